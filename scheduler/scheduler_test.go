package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testutil"
	"github.com/dynamo-go/dynamo/inventory"
)

// Writers must never overlap, while readers do run in parallel. Every
// writer is also a counter increment computed from its snapshot, so a
// lost or doubled write would show in the final count too.
func TestWritersExclusiveReadersParallel(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		var writers, readers gauge
		s := newScheduler(t, d, fastConfig("a"), func(s *Scheduler) {
			for i := range 3 {
				must(t, s.Register(App{Name: fmt.Sprintf("w%d", i), Writer: true, Plan: func(ctx context.Context, e *Env) (*Plan, error) {
					writers.enter()
					defer writers.leave()
					// Simulated work: it widens the window in which a second
					// writer, if one were let in, would be caught overlapping.
					time.Sleep(30 * time.Millisecond)
					return counterPlan(ctx, e)
				}}))
			}
			for i := range 4 {
				must(t, s.Register(App{Name: fmt.Sprintf("r%d", i), Run: func(ctx context.Context, e *Env) error {
					readers.enter()
					defer readers.leave()
					// Stay inside until another reader joined: readers that
					// run in parallel meet here at once, serialised ones
					// never do and the peak below stays 1.
					testutil.Poll(10*time.Second, func() bool { return readers.peak() >= 2 })
					return nil
				}}))
			}
		})
		start(t, s)
		waitLeader(t, s)
		var wg sync.WaitGroup
		runs := make(chan Run, 64)
		for round := range 3 {
			for i := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := s.RunNow(context.Background(), RunRequest{App: fmt.Sprintf("w%d", i), Wait: true, By: "test"})
					if err != nil {
						t.Errorf("w%d round %d: %v", i, round, err)
					}
					runs <- r
				}()
			}
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := s.RunNow(context.Background(), RunRequest{App: fmt.Sprintf("r%d", i), Wait: true})
					if err != nil {
						t.Errorf("r%d: %v", i, err)
					}
					runs <- r
				}()
			}
		}
		wg.Wait()
		close(runs)
		for r := range runs {
			if r.Status != StatusOK {
				t.Errorf("run %d of %s: %s %s", r.ID, r.App, r.Status, r.Error)
			}
			if r.Writer && (r.Updates != 1 || r.LastSeq == 0) {
				t.Errorf("writer run %d recorded %d updates (seq %d), want 1", r.ID, r.Updates, r.LastSeq)
			}
		}
		if p := writers.peak(); p != 1 {
			t.Fatalf("%d writers ran at once; want exactly 1", p)
		}
		if p := readers.peak(); p < 2 {
			t.Fatalf("readers never ran in parallel (peak %d)", p)
		}
		if v := counterValue(s); v != 9 {
			t.Fatalf("counter = %d after 9 writer runs", v)
		}
	})
}

// A writer that fails, or that returns its plan after the timeout, leaves
// the inventory untouched.
func TestWriterFailureOrTimeoutAppliesNothing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		release, returned := make(chan struct{}), make(chan struct{})
		s := newScheduler(t, d, fastConfig("a"), func(s *Scheduler) {
			must(t, s.Register(App{Name: "late", Writer: true, Timeout: 100 * time.Millisecond,
				Plan: func(ctx context.Context, e *Env) (*Plan, error) {
					defer close(returned)
					<-release // ignores ctx on purpose
					return counterPlan(context.Background(), e)
				}}))
			must(t, s.Register(App{Name: "broken", Writer: true, Plan: func(ctx context.Context, e *Env) (*Plan, error) {
				p, _ := counterPlan(ctx, e)
				return p, errors.New("half done")
			}}))
			must(t, s.Register(App{Name: "panics", Writer: true, Plan: func(ctx context.Context, e *Env) (*Plan, error) {
				panic("boom")
			}}))
			must(t, s.Register(App{Name: "invalid", Writer: true, Plan: func(ctx context.Context, e *Env) (*Plan, error) {
				// The second update is invalid: the whole plan must be refused.
				p, _ := counterPlan(ctx, e)
				p.Updates = []inventory.Update{inventory.DeleteDataset{ID: 999}}
				return p, nil
			}}))
		})
		start(t, s)
		waitLeader(t, s)
		seq := s.store.Seq()
		r, err := s.RunNow(context.Background(), RunRequest{App: "late", Wait: true})
		must(t, err)
		if r.Status != StatusTimeout {
			t.Errorf("late: status %s, want timeout", r.Status)
		}
		close(release) // the plan arrives now, too late
		<-returned
		// The failing writers below take the writer slot after the late
		// plan was handed over: had it been applied, it would show by now.
		for _, app := range []string{"broken", "panics", "invalid"} {
			r, err := s.RunNow(context.Background(), RunRequest{App: app, Wait: true})
			must(t, err)
			if r.Status != StatusFailed || r.Updates != 0 || r.Error == "" {
				t.Errorf("%s: %+v, want failed with an error and no updates", app, r)
			}
		}
		if s.store.Seq() != seq || counterValue(s) != 0 {
			t.Fatalf("inventory changed: seq %d -> %d, counter %d", seq, s.store.Seq(), counterValue(s))
		}
		var n int
		must(t, d.Get(&n, "SELECT COUNT(*) FROM inventory_changes WHERE seq > ?", seq))
		if n != 0 {
			t.Fatalf("%d change-log rows written", n)
		}
		if v := promtest.ToFloat64(s.m.runs.WithLabelValues("late", StatusTimeout)); v != 1 {
			t.Errorf("runs_total{late,timeout} = %v", v)
		}
	})
}

// A paused app is skipped and the skip recorded; after resume it runs.
func TestPausedAppSkippedAndRecorded(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		cfg := fastConfig("a")
		cfg.Cron = []CronEntry{{Name: "tick", Schedule: "@every 1s", App: AppTestCounter}}
		s := newScheduler(t, d, cfg, nil)
		ctx := context.Background()
		_, err := s.Pause(ctx, AppTestCounter, "alice", "maintenance")
		must(t, err)
		start(t, s)
		waitLeader(t, s)
		r, err := s.RunNow(ctx, RunRequest{App: AppTestCounter, Wait: true})
		if !errors.Is(err, ErrPaused) || r.Status != StatusSkipped || r.ID == 0 {
			t.Fatalf("run of a paused app: %+v, %v; want a recorded skip and ErrPaused", r, err)
		}
		waitFor(t, "a skipped cron run", 5*time.Second, func() bool {
			rs, err := s.Runs(ctx, RunFilter{App: AppTestCounter, Status: StatusSkipped})
			must(t, err)
			for _, r := range rs {
				if r.Trigger == TriggerCron {
					return true
				}
			}
			return false
		})
		if v := counterValue(s); v != 0 {
			t.Fatalf("paused app wrote: counter %d", v)
		}
		apps, err := s.Apps(ctx)
		must(t, err)
		for _, a := range apps {
			if a.Name == AppTestCounter && (a.Paused == nil || a.Paused.By != "alice" || a.Paused.Reason != "maintenance") {
				t.Fatalf("app list does not show the pause: %+v", a.Paused)
			}
		}
		was, err := s.Resume(ctx, AppTestCounter)
		if err != nil || !was {
			t.Fatalf("resume: %v %v", was, err)
		}
		waitFor(t, "a cron run after resume", 5*time.Second, func() bool { return counterValue(s) >= 1 })
		if _, err := s.Pause(ctx, "nope", "x", ""); !errors.Is(err, ErrUnknownApp) {
			t.Fatalf("pause of an unknown app: %v", err)
		}
	})
}

// Shutdown lets a run finish within the grace, cancels the rest through
// their context, records them, and releases the lease.
func TestShutdownGraceThenCancel(t *testing.T) {
	d := testdb.SQLite(t)
	cfg := fastConfig("a")
	cfg.Grace = 2 * time.Second
	started := make(chan string, 2)
	var logs *logtest.Hook
	s := newScheduler(t, d, cfg, func(s *Scheduler) {
		logs = logtest.NewLocal(s.log.Logger)
		must(t, s.Register(App{Name: "short", Run: func(ctx context.Context, e *Env) error {
			started <- "short"
			// Still running when the shutdown begins, done well within
			// the grace once it has.
			if !testutil.Poll(time.Minute, func() bool { return logged(logs, "scheduler stopping") }) {
				return errors.New("the shutdown never began")
			}
			return nil
		}}))
		must(t, s.Register(App{Name: "long", Run: func(ctx context.Context, e *Env) error {
			started <- "long"
			<-ctx.Done()
			return ctx.Err()
		}}))
	})
	h := start(t, s)
	waitLeader(t, s)
	ctx := context.Background()
	rs, err := s.RunNow(ctx, RunRequest{App: "short"})
	must(t, err)
	rl, err := s.RunNow(ctx, RunRequest{App: "long"})
	must(t, err)
	<-started
	<-started
	h.stop(t) // bounded by the harness: a shutdown that waits for "long" forever fails there
	short, err := s.GetRun(ctx, rs.ID)
	must(t, err)
	long, err := s.GetRun(ctx, rl.ID)
	must(t, err)
	if short.Status != StatusOK || long.Status != StatusCancelled {
		t.Fatalf("short %s, long %s; want ok and cancelled", short.Status, long.Status)
	}
	l, err := ReadLease(ctx, d)
	must(t, err)
	if l.Holder != "" {
		t.Fatalf("lease still held by %q after shutdown", l.Holder)
	}
	if _, err := s.RunNow(ctx, RunRequest{App: "short"}); err == nil {
		t.Fatal("run accepted after shutdown")
	}
}

// Two schedulers on one database: one leads, the other stands by, replays
// the change log, and takes over when the first stops; nothing is
// written twice.
func TestLeaseHandover(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		cfgA, cfgB := fastConfig("a"), fastConfig("b")
		a := newScheduler(t, d, cfgA, nil)
		ha := start(t, a)
		waitLeader(t, a)
		base := a.store.Seq() // loading writes the default partition
		b := newScheduler(t, d, cfgB, nil)
		start(t, b)
		for range 3 {
			_, err := a.RunNow(context.Background(), RunRequest{App: AppTestCounter, Wait: true})
			must(t, err)
		}
		if _, err := b.RunNow(context.Background(), RunRequest{App: AppTestCounter}); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("standby accepted a run: %v", err)
		}
		noWrite := func(*inventory.Txn) error { t.Error("standby ran a write"); return nil }
		if _, err := b.Write(context.Background(), time.Now(), noWrite); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("standby accepted a write: %v", err)
		}
		waitFor(t, "the standby to replay the change log", 5*time.Second, func() bool { return counterValue(b) == 3 })
		ha.stop(t)
		waitLeader(t, b)
		r, err := b.RunNow(context.Background(), RunRequest{App: AppTestCounter, Wait: true})
		must(t, err)
		if r.Status != StatusOK || counterValue(b) != 4 || r.FirstSeq != base+4 {
			t.Fatalf("after takeover: %+v, counter %d", r, counterValue(b))
		}
		p, _ := counterPlan(context.Background(), &Env{Snapshot: b.store.Snapshot()})
		if res, err := b.Write(context.Background(), time.Now(), p.Build); err != nil || res.Updates != 1 {
			t.Fatalf("write on the new holder: %+v %v", res, err)
		}
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Metrics land on the registry passed to New.
func TestMetrics(t *testing.T) {
	d := testdb.SQLite(t)
	reg := prometheus.NewRegistry()
	s, err := New(fastConfig("m"), loadStore(t, d), testLog(t), reg)
	must(t, err)
	must(t, s.RegisterBuiltins())
	start(t, s)
	waitLeader(t, s)
	before := time.Now()
	_, err = s.RunNow(context.Background(), RunRequest{App: AppTestCounter, Wait: true})
	must(t, err)
	_, err = s.RunNow(context.Background(), RunRequest{App: AppNoop, Args: []string{"--fail"}, Wait: true})
	must(t, err)
	want := map[string]bool{}
	mfs, err := reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		want[mf.GetName()] = true
	}
	for _, n := range []string{"dynamo_scheduler_run_duration_seconds", "dynamo_scheduler_last_success_timestamp_seconds",
		"dynamo_scheduler_runs_total", "dynamo_scheduler_updates_applied_total", "dynamo_scheduler_writer_lease_held"} {
		if !want[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
	if v := promtest.ToFloat64(s.m.lastSuccess.WithLabelValues(AppTestCounter)); v < float64(before.Unix()) {
		t.Errorf("last success of the counter = %v, want >= %d", v, before.Unix())
	}
	if n := promtest.CollectAndCount(s.m.lastSuccess); n != 1 {
		t.Errorf("%d last-success series; the failed noop must not have one", n)
	}
	if v := promtest.ToFloat64(s.m.updates.WithLabelValues(AppTestCounter)); v != 1 {
		t.Errorf("updates applied = %v", v)
	}
	if v := promtest.ToFloat64(s.m.leaseHeld); v != 1 {
		t.Errorf("lease held = %v", v)
	}
}

// A MultiCommit writer's commits are applied as it goes; once its run
// times out, Commit refuses.
func TestMultiCommitWriter(t *testing.T) {
	d := testdb.SQLite(t)
	refused := make(chan error, 1)
	s := newScheduler(t, d, fastConfig("a"), func(s *Scheduler) {
		must(t, s.Register(App{Name: "steps", Writer: true, MultiCommit: true, Timeout: 300 * time.Millisecond,
			Plan: func(ctx context.Context, e *Env) (*Plan, error) {
				for i := range 2 {
					p, _ := counterPlan(ctx, &Env{Snapshot: s.store.Snapshot()})
					if _, err := e.Commit(ctx, p.Build); err != nil {
						return nil, fmt.Errorf("commit %d: %w", i, err)
					}
				}
				<-ctx.Done()
				// Commit once the scheduler has judged the run timed out
				// (it closes Commit before recording the outcome).
				testutil.Poll(time.Minute, func() bool {
					r, err := s.GetRun(context.Background(), e.RunID)
					return err == nil && r.Status == StatusTimeout
				})
				p, _ := counterPlan(context.Background(), &Env{Snapshot: s.store.Snapshot()})
				_, err := e.Commit(context.Background(), p.Build)
				refused <- err
				return nil, nil
			}}))
	})
	start(t, s)
	waitLeader(t, s)
	r, err := s.RunNow(context.Background(), RunRequest{App: "steps", Wait: true})
	must(t, err)
	if r.Status != StatusTimeout || r.Updates != 2 {
		t.Fatalf("run: %s with %d updates; want timeout with the 2 committed", r.Status, r.Updates)
	}
	if err := <-refused; !errors.Is(err, ErrStopped) {
		t.Fatalf("commit after the timeout: %v", err)
	}
	if v := counterValue(s); v != 2 {
		t.Fatalf("counter %d, want 2", v)
	}
}

// A standby replays the holder's writes every replay interval, not only
// at its lease attempts: with a heartbeat of an hour it still serves
// them.
func TestStandbyReplaysBetweenHeartbeats(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		slow := func(id string) Config {
			c := fastConfig(id)
			c.LeasePeriod, c.Heartbeat, c.ReplayInterval = 3*time.Hour, time.Hour, 20*time.Millisecond
			return c
		}
		a := newScheduler(t, d, slow("a"), nil)
		start(t, a)
		waitLeader(t, a)
		b := newScheduler(t, d, slow("b"), nil)
		start(t, b)
		// The standby's first lease attempt (which replays too) is over:
		// the writes below come after it, and its next one is an hour away.
		waitFor(t, "the standby's first lease attempt", 5*time.Second, func() bool {
			l := b.seen.Load()
			return l != nil && l.Holder == "a"
		})
		for range 3 {
			_, err := a.RunNow(context.Background(), RunRequest{App: AppTestCounter, Wait: true})
			must(t, err)
		}
		waitFor(t, "the standby to replay the holder's writes", 30*time.Second, func() bool { return counterValue(b) == 3 })
		if b.Leader() {
			t.Fatal("the standby took the lease")
		}
	})
}

// The replay interval defaults below the heartbeat and cannot exceed it.
func TestReplayIntervalConfig(t *testing.T) {
	c := Config{Heartbeat: 100 * time.Millisecond, LeasePeriod: time.Second}
	c.ApplyDefaults()
	if c.ReplayInterval != 100*time.Millisecond {
		t.Fatalf("replay interval %s with a 100ms heartbeat, want the heartbeat", c.ReplayInterval)
	}
	c = Config{}
	c.ApplyDefaults()
	if c.ReplayInterval != 250*time.Millisecond || c.ReplayInterval >= c.Heartbeat {
		t.Fatalf("default replay interval %s", c.ReplayInterval)
	}
	c.ReplayInterval = c.Heartbeat + time.Millisecond
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "scheduler.replay_interval") {
		t.Fatalf("a replay interval above the heartbeat: %v", err)
	}
}
