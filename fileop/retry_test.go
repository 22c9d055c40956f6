package fileop_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// flaky wraps a backend and turns the first result of every task into a
// recoverable failure.
type flaky struct {
	fileop.Backend
	mu   sync.Mutex
	seen map[int64]bool
}

func (f *flaky) Run(ctx context.Context, report func(fileop.Result)) error {
	return f.Backend.Run(ctx, func(r fileop.Result) {
		f.mu.Lock()
		first := !f.seen[r.SubID]
		f.seen[r.SubID] = true
		f.mu.Unlock()
		if first {
			r.Err, r.Recoverable, r.Code = errors.New("transient: connection reset"), true, "test"
		}
		report(r)
	})
}

// TestRecoverableFailureRetriesAfterBackoff: inbatch -> retry (with
// next_try in the future and the source failure remembered) -> inbatch ->
// done.
func TestRecoverableFailureRetriesAfterBackoff(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 3, 10)
		ctx := context.Background()
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		start := time.Now()
		e.runUntil(t, cfg, fileop.Options{Backend: &flaky{Backend: fileop.NewNative(cfg.Native, cfg.Driver, testLog(t)), seen: map[int64]bool{}}}, 30*time.Second)
		if time.Since(start) < time.Second {
			t.Fatalf("finished in %v: the retry did not wait for the backoff", time.Since(start))
		}
		if got := e.count(t, "state = 'done' AND tries = 1"); got != 3 {
			t.Fatalf("%d done after one failed try, want 3", got)
		}
		if e.historyCount(t, "outcome = 'failed'") != 3 || e.historyCount(t, "outcome = 'done'") != 3 {
			t.Fatal("history should hold one failure and one success per file")
		}
		var n int
		if err := d.Get(&n, "SELECT COUNT(*) FROM "+fileop.TableSourceFailures+" WHERE failures = 1 AND recoverable = 1"); err != nil || n != 3 {
			t.Fatalf("%d source failure rows (%v)", n, err)
		}
		if rep, _ := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Dst.ID); !rep.Complete {
			t.Fatal("replica not complete")
		}
	})
}
