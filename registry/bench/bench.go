// Package bench is the REST API load benchmark: an open-loop generator
// that sends read requests at a fixed rate to a registry server on
// loopback and reports latency percentiles. Latency is measured from each
// request's scheduled start, so a server that falls behind is charged for
// the queueing it causes (no coordinated omission).
package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

// Options shape a run.
type Options struct {
	Rate     int           // requests per second; default 500
	Duration time.Duration // measured time; default 10 s
	Warmup   time.Duration // unmeasured time before; default 2 s
	Workers  int           // concurrent connections; default 64
	Seed     uint64        // picks the request mix
	// ScanPercent of the requests are dataset globs without a literal
	// prefix that match nothing: the worst case, a scan of every name.
	ScanPercent int
}

func (o *Options) defaults() {
	if o.Rate <= 0 {
		o.Rate = 500
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	} else if o.Warmup == 0 {
		o.Warmup = 2 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 64
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
}

// Target is one request of the mix.
type Target struct {
	Route string // label for per-route figures
	Path  string // path and query
}

// Stats are latency figures in milliseconds.
type Stats struct {
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
}

// Result is a run's outcome.
type Result struct {
	Rate         int              `json:"target_rate"`
	AchievedRate float64          `json:"achieved_rate"`
	Seconds      float64          `json:"seconds"`
	All          Stats            `json:"all"`
	Routes       map[string]Stats `json:"routes"`
	FirstError   string           `json:"first_error,omitempty"`
	// CPUPerRequest is the process CPU time (user+system, generator and
	// server together: an upper bound for the server) per measured
	// request, in milliseconds. Unlike the latencies it barely depends
	// on what else the machine runs.
	CPUPerRequest float64 `json:"cpu_ms_per_request"`
	// CPUCores is that CPU time over the measured wall time.
	CPUCores float64 `json:"cpu_cores"`
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Mix builds n requests over the inventory: dataset details and replicas
// for random datasets, prefix-glob and exact dataset listings, sites,
// groups and usage, weighted like an interactive client's reads.
func Mix(snap *inventory.Snapshot, n int, seed uint64, scanPercent int) []Target {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var names []string
	for d := range snap.Datasets() {
		names = append(names, d.Name)
	}
	sites := snap.Sites()
	if len(names) == 0 || len(sites) == 0 {
		return nil
	}
	ds := func() string { return names[rng.IntN(len(names))] }
	out := make([]Target, 0, n)
	for len(out) < n {
		if rng.IntN(100) < scanPercent {
			out = append(out, Target{"datasets_scan", "/api/v1/datasets?limit=100&name=" + url.QueryEscape("*/NO-SUCH-TIER")})
			continue
		}
		switch w := rng.IntN(100); {
		case w < 30:
			out = append(out, Target{"dataset", "/api/v1/datasets/" + url.PathEscape(ds())})
		case w < 50:
			out = append(out, Target{"dataset_replicas", "/api/v1/datasets/" + url.PathEscape(ds()) + "/replicas"})
		case w < 65:
			primary := strings.SplitN(ds(), "/", 3)[1]
			out = append(out, Target{"datasets_glob", "/api/v1/datasets?limit=100&name=" + url.QueryEscape("/"+primary+"/*")})
		case w < 75:
			out = append(out, Target{"datasets_exact", "/api/v1/datasets?name=" + url.QueryEscape(ds())})
		case w < 85:
			out = append(out, Target{"site", "/api/v1/sites/" + url.PathEscape(sites[rng.IntN(len(sites))].Name)})
		case w < 90:
			out = append(out, Target{"sites", "/api/v1/sites"})
		case w < 95:
			out = append(out, Target{"groups", "/api/v1/groups"})
		default:
			out = append(out, Target{"usage_by_site", "/api/v1/usage?by=site"})
		}
	}
	return out
}

// Run sends targets (cycled) to baseURL at o.Rate for o.Warmup+o.Duration
// and returns the figures of the measured part.
func Run(ctx context.Context, baseURL string, targets []Target, o Options) (Result, error) {
	o.defaults()
	if len(targets) == 0 {
		return Result{}, fmt.Errorf("bench: no targets (empty inventory?)")
	}
	tr := &http.Transport{MaxIdleConns: o.Workers, MaxIdleConnsPerHost: o.Workers, MaxConnsPerHost: o.Workers,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	type job struct {
		t        Target
		due      time.Time
		measured bool
	}
	type sample struct {
		route string
		lat   time.Duration
		err   error
	}
	total := int((o.Warmup + o.Duration).Seconds() * float64(o.Rate))
	jobs := make(chan job, total)
	samples := make(chan sample, total)
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				err := get(ctx, hc, baseURL+j.t.Path)
				if j.measured {
					samples <- sample{j.t.Route, time.Since(j.due), err}
				}
			}
		}()
	}
	start := time.Now()
	measureFrom := start.Add(o.Warmup)
	var cpu0 time.Duration
	cpuMarked := false
	interval := time.Second / time.Duration(o.Rate)
	for i := 0; i < total && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		measured := !due.Before(measureFrom)
		if measured && !cpuMarked {
			cpu0, cpuMarked = cpuTime(), true
		}
		jobs <- job{targets[i%len(targets)], due, measured}
	}
	close(jobs)
	wg.Wait()
	close(samples)
	elapsed := time.Since(measureFrom)
	cpu := cpuTime() - cpu0

	res := Result{Rate: o.Rate, Routes: map[string]Stats{}}
	per := map[string][]time.Duration{}
	var all []time.Duration
	errs := map[string]int{}
	for s := range samples {
		if s.err != nil {
			errs[s.route]++
			if res.FirstError == "" {
				res.FirstError = s.err.Error()
			}
		}
		per[s.route] = append(per[s.route], s.lat)
		all = append(all, s.lat)
	}
	res.All = stats(all)
	for r, l := range per {
		st := stats(l)
		st.Errors = errs[r]
		res.All.Errors += errs[r]
		res.Routes[r] = st
	}
	res.Seconds = elapsed.Seconds()
	res.AchievedRate = float64(len(all)) / o.Duration.Seconds()
	if len(all) > 0 && cpuMarked {
		res.CPUPerRequest = float64(cpu.Microseconds()) / 1000 / float64(len(all))
		res.CPUCores = cpu.Seconds() / elapsed.Seconds()
	}
	return res, ctx.Err()
}

func get(ctx context.Context, hc *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	return nil
}

func stats(l []time.Duration) Stats {
	if len(l) == 0 {
		return Stats{}
	}
	slices.Sort(l)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	q := func(p float64) float64 { return ms(l[min(len(l)-1, int(p*float64(len(l))))]) }
	return Stats{Requests: len(l), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms(l[len(l)-1])}
}

// API starts a registry server for st on 127.0.0.1 (plain HTTP, anonymous
// reads, nothing written to the database) and runs the read mix against
// it. Generator and server share the machine, as they would on a loaded
// single host.
func API(ctx context.Context, st *inventory.Store, log *logrus.Entry, o Options) (Result, error) {
	o.defaults()
	cfg := registry.DefaultConfig()
	cfg.InjectInterval = 0
	srv, err := registry.New(registry.Options{Config: cfg, DB: st.DB(), Log: log, Inventory: st})
	if err != nil {
		return Result{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	defer func() { cancel(); <-done }()
	targets := Mix(st.Snapshot(), 20000, o.Seed, o.ScanPercent)
	return Run(ctx, "http://"+ln.Addr().String(), targets, o)
}
