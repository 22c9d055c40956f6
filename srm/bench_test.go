package srm

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/srm/client"
)

// Benchmarks run the SE and the client in one process on loopback, over
// kept-alive TLS connections, so the figures include both sides' CPU.
//
//	go test ./srm/ -run '^$' -bench . -benchtime 5s

func p99(lat [][]time.Duration) time.Duration {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return 0
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return all[len(all)*99/100]
}

// BenchmarkLsOneFile: srmLs (full details) of one file, 16 concurrent
// callers. Target: >= 5,000 req/s with p99 < 20 ms.
func BenchmarkLsOneFile(b *testing.B) {
	se := startSE(b, nil, nil)
	must(b, os.WriteFile(filepath.Join(se.Root, "f"), []byte("data"), 0o644))
	c, _, S := clientFor(b, se)
	ctx := context.Background()
	if _, err := c.Stat(ctx, S+"f"); err != nil {
		b.Fatal(err)
	}
	const workers = 16
	var lat [workers][]time.Duration
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if _, err := c.Stat(ctx, S+"f"); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
	b.ReportMetric(float64(p99(lat[:]).Microseconds())/1000, "p99-ms")
}

// BenchmarkPrepareToGet: queued gets of 100 files each, submitted by 8
// callers and polled to FILE_PINNED. Target: >= 2,000 files/s.
func BenchmarkPrepareToGet(b *testing.B) {
	se := startSE(b, nil, func(c *Config) { c.Engine.PickInterval = 10 * time.Millisecond })
	const perReq = 100
	var surls []string
	for i := 0; i < perReq; i++ {
		name := fmt.Sprintf("f%03d", i)
		must(b, os.WriteFile(filepath.Join(se.Root, name), []byte("x"), 0o644))
		surls = append(surls, "srm://localhost/"+name)
	}
	c, _, _ := clientFor(b, se)
	ctx := context.Background()
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				r, err := c.PrepareToGet(ctx, surls, []string{"https"}, 0)
				if err == nil {
					err = c.Wait(ctx, r)
				}
				if err != nil {
					b.Error(err)
					return
				}
				for _, f := range r.Files {
					if f.Code != "SRM_FILE_PINNED" {
						b.Errorf("file %s: %s %s", f.SURL, f.Code, f.Explanation)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*perReq)/el.Seconds(), "files/s")
}

// TestOverload offers 10x the engine's capacity (workers + queues +
// max_queued) at once: every call must get an answer (QUEUED or the
// retryable SRM_INTERNAL_ERROR), every accepted request must complete, and
// the heap must stay bounded.
func TestOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("overload test in -short mode")
	}
	se := startSE(t, nil, func(c *Config) {
		c.Engine.GetWorkers, c.Engine.QueueSize, c.Engine.MaxQueued, c.Engine.PickBatch = 2, 10, 50, 10
	})
	must(t, os.WriteFile(filepath.Join(se.Root, "f"), []byte("x"), 0o644))
	c, _, S := clientFor(t, se)
	ctx := context.Background()
	capacity := 2 + 10 + 50
	offered := 10 * capacity
	var queued, refused, other atomic.Int64
	var reqs sync.Map
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := 0; i < offered; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := c.PrepareToGet(ctx, []string{S + "f"}, []string{"https"}, 0)
			switch {
			case err == nil:
				queued.Add(1)
				reqs.Store(i, r)
			case errors.Is(err, client.ErrInternal):
				refused.Add(1)
			default:
				other.Add(1)
				t.Errorf("unexpected answer: %v", err)
			}
		}(i)
	}
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("offered %d (capacity %d): queued %d, refused with SRM_INTERNAL_ERROR %d, other %d; heap %d -> %d KiB",
		offered, capacity, queued.Load(), refused.Load(), other.Load(), before.HeapInuse>>10, after.HeapInuse>>10)
	if queued.Load()+refused.Load() != int64(offered) {
		t.Errorf("not every call was answered")
	}
	if refused.Load() == 0 {
		t.Errorf("nothing was refused at 10x capacity: the queue is not bounded")
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	reqs.Range(func(_, v any) bool {
		r := v.(*client.Request)
		if err := c.Wait(wctx, r); err != nil || r.Files[0].Code != "SRM_FILE_PINNED" {
			t.Errorf("accepted request %s did not complete: %v %+v", r.Token, err, r.Files)
			return false
		}
		return true
	})
	if after.HeapInuse > before.HeapInuse+64<<20 {
		t.Errorf("heap grew by %d MiB", (after.HeapInuse-before.HeapInuse)>>20)
	}
}

// BenchmarkLsHandler: the server's own cost of one srmLs (SOAP decode,
// namespace, stat, xattr, encode), without TLS or a client: the figure
// that does not depend on the load harness sharing the CPU.
func BenchmarkLsHandler(b *testing.B) {
	se := startSE(b, nil, nil)
	must(b, os.WriteFile(filepath.Join(se.Root, "f"), []byte("data"), 0o644))
	body := `<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:srm2="http://srm.lbl.gov/StorageResourceManager"><SOAP-ENV:Body><srm2:srmLs><srmLsRequest><arrayOfSURLs><urlArray>srm://localhost/f</urlArray></arrayOfSURLs><storageSystemInfo xsi:nil="true"/><fullDetailedList>true</fullDetailedList><numOfLevels>0</numOfLevels></srmLsRequest></srm2:srmLs></SOAP-ENV:Body></SOAP-ENV:Envelope>`
	ctx := context.WithValue(context.Background(), connKey, &gsiConn{id: identityOf(b, se)})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/srm/managerv2", strings.NewReader(body)).WithContext(ctx)
			w := httptest.NewRecorder()
			se.serveSRM(w, req)
			if w.Code != 200 || !strings.Contains(w.Body.String(), "SRM_SUCCESS") {
				b.Fatalf("%d %s", w.Code, w.Body.String())
			}
		}
	})
}
