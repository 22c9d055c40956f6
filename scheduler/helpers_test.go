package scheduler

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testutil"
	"github.com/dynamo-go/dynamo/inventory"
)

// tlog routes logs to the test; lines logged after the test ended (by
// goroutines such as cron's, which log after Stop returns) are dropped.
type tlog struct {
	t    testing.TB
	done *atomic.Bool
}

func (w tlog) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func testLog(t testing.TB) *logrus.Entry {
	l := logrus.New()
	done := &atomic.Bool{}
	t.Cleanup(func() { done.Store(true) })
	l.SetOutput(tlog{t, done})
	l.SetLevel(logrus.DebugLevel)
	return l.WithField("component", "scheduler")
}

// fastConfig has short periods for tests.
func fastConfig(id string) Config {
	return Config{ServerID: id, LeasePeriod: time.Second, Heartbeat: 100 * time.Millisecond,
		Grace: 2 * time.Second, RetryDelay: 10 * time.Millisecond, DefaultTimeout: 30 * time.Second,
		MaxReaders: 8, TestApps: true}
}

func loadStore(t testing.TB, d *db.DB) *inventory.Store {
	t.Helper()
	st, err := inventory.Load(context.Background(), d, testLog(t), nil, time.Now())
	if err != nil {
		t.Fatalf("load inventory: %v", err)
	}
	return st
}

// harness is a scheduler running in the background.
type harness struct {
	s      *Scheduler
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
}

// newScheduler builds a scheduler with the builtins; setup may register
// more apps or load sequences before it starts.
func newScheduler(t *testing.T, d *db.DB, cfg Config, setup func(s *Scheduler)) *Scheduler {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, loadStore(t, d), testLog(t), reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.RegisterBuiltins(); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	return s
}

// start runs s until the test ends (or stop is called).
func start(t *testing.T, s *Scheduler) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- s.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		h.done <- nil // later stops return at once
	case <-time.After(20 * time.Second):
		t.Fatal("scheduler did not stop")
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, d, what, cond)
}

func waitLeader(t *testing.T, s *Scheduler) {
	t.Helper()
	waitFor(t, "the writer lease", 5*time.Second, s.Leader)
}

// gauge tracks how many holders are inside a section and the maximum seen.
type gauge struct {
	mu       sync.Mutex
	cur, max int
}

func (g *gauge) enter() {
	g.mu.Lock()
	g.cur++
	if g.cur > g.max {
		g.max = g.cur
	}
	g.mu.Unlock()
}

func (g *gauge) leave() { g.mu.Lock(); g.cur--; g.mu.Unlock() }

func (g *gauge) peak() int { g.mu.Lock(); defer g.mu.Unlock(); return g.max }

func counterValue(s *Scheduler) int64 {
	ds, ok := s.store.Snapshot().DatasetByName(CounterDataset)
	if !ok {
		return 0
	}
	return ds.LastUpdate
}

// logged tells whether a message starting with prefix went through the
// hook: what the scheduler reports is how tests see where it is.
func logged(h *logtest.Hook, prefix string) bool {
	for _, e := range h.AllEntries() {
		if strings.HasPrefix(e.Message, prefix) {
			return true
		}
	}
	return false
}
