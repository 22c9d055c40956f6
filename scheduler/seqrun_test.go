package scheduler

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/dynamo-go/dynamo/internal/testdb"
)

// recorder is an app whose args are LABEL MODE: MODE "ok" succeeds,
// "failN" fails the first N calls of LABEL.
type recorder struct {
	mu    sync.Mutex
	calls []string
	times map[string][]time.Time
}

func (r *recorder) app() App {
	r.times = map[string][]time.Time{}
	return App{Name: "rec", Run: func(ctx context.Context, e *Env) error {
		label, mode := e.Args[0], e.Args[1]
		r.mu.Lock()
		defer r.mu.Unlock()
		n := len(r.times[label])
		r.calls = append(r.calls, label)
		r.times[label] = append(r.times[label], time.Now())
		if strings.HasPrefix(mode, "fail") {
			k, _ := strconv.Atoi(mode[4:])
			if n < k {
				return fmt.Errorf("%s: failure %d of %d", label, n+1, k)
			}
		}
		return nil
	}}
}

// callsWith returns the calls whose label starts with prefix, in order.
func (r *recorder) callsWith(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// The failure modes: | continues, & repeats the step, ^ restarts the
// sequence; TERMINATE ends it for good.
func TestSequenceFailureModes(t *testing.T) {
	d := testdb.SQLite(t)
	rec := &recorder{}
	src := `{rec} = rec
[SEQUENCE cont]
| {rec} c1 fail99
| {rec} c2 ok
TERMINATE

[SEQUENCE rep]
& {rec} r1 fail2
| {rec} r2 ok
TERMINATE

[SEQUENCE rs]
| {rec} s0 ok
^ {rec} s1 fail1
| {rec} s2 ok
TERMINATE
`
	s := newScheduler(t, d, fastConfig("a"), func(s *Scheduler) {
		must(t, s.Register(rec.app()))
		must(t, s.LoadSequences(strings.NewReader(src), "modes.seq"))
	})
	start(t, s)
	ctx := context.Background()
	waitFor(t, "all sequences to terminate", 10*time.Second, func() bool {
		for _, q := range []string{"cont", "rep", "rs"} {
			if p, ok, _ := s.hist.seqPos(ctx, q); !ok || p != seqTerminated {
				return false
			}
		}
		return true
	})
	for prefix, want := range map[string]string{
		"c": "c1 c2",
		"r": "r1 r1 r1 r2",
		"s": "s0 s1 s0 s1 s2",
	} {
		if got := strings.Join(rec.callsWith(prefix), " "); got != want {
			t.Errorf("sequence %s ran %q, want %q", prefix, got, want)
		}
	}
	failed, err := s.Runs(ctx, RunFilter{App: "rec", Status: StatusFailed})
	must(t, err)
	if len(failed) != 1+2+1 {
		t.Errorf("%d failed runs recorded, want 4", len(failed))
	}
	for _, r := range failed {
		if r.Trigger != TriggerSequence || r.Error == "" {
			t.Errorf("failed run %+v: want trigger sequence and an error", r)
		}
	}
	// Terminated sequences stay terminated across a restart of the
	// scheduler (no restart flag).
	before := len(rec.callsWith(""))
	s2 := newScheduler(t, d, fastConfig("a"), func(s *Scheduler) {
		must(t, s.Register(rec.app()))
		must(t, s.LoadSequences(strings.NewReader(src), "modes.seq"))
	})
	// The new lease holder logs its decision not to start each of the
	// three terminated sequences: once it has, none of them can run.
	skips := logtest.NewLocal(s2.log.Logger)
	start(t, s2)
	waitFor(t, "the three terminated sequences to be skipped", 30*time.Second, func() bool {
		n := 0
		for _, e := range skips.AllEntries() {
			if strings.HasPrefix(e.Message, "sequence terminated earlier") {
				n++
			}
		}
		return n == 3
	})
	if after := len(rec.callsWith("")); after != before {
		t.Fatalf("terminated sequences ran again: %d calls, was %d", after, before)
	}
}

// WAIT spaces the passes of a looping sequence; [N] times a step out, and
// a timeout counts as a failure (| continues).
func TestSequenceWaitTimeoutLoop(t *testing.T) {
	d := testdb.SQLite(t)
	rec := &recorder{}
	src := `{rec} = rec
{slow} = noop --sleep 10s
[SEQUENCE loop]
| [100ms] {slow}
| {rec} l ok
WAIT 0.3
`
	s := newScheduler(t, d, fastConfig("a"), func(s *Scheduler) {
		must(t, s.Register(rec.app()))
		must(t, s.LoadSequences(strings.NewReader(src), "loop.seq"))
	})
	start(t, s)
	waitFor(t, "three passes", 10*time.Second, func() bool { return len(rec.callsWith("l")) >= 3 })
	rec.mu.Lock()
	ts := append([]time.Time(nil), rec.times["l"]...)
	rec.mu.Unlock()
	for i := 1; i < len(ts); i++ {
		// WAIT 0.3 then the 100ms timeout of the slow step come between passes.
		if gap := ts[i].Sub(ts[i-1]); gap < 400*time.Millisecond {
			t.Errorf("pass %d came %s after the previous; want >= 400ms", i, gap)
		}
	}
	runs, err := s.Runs(context.Background(), RunFilter{App: AppNoop})
	must(t, err)
	if len(runs) < 2 {
		t.Fatalf("%d runs of the slow step", len(runs))
	}
	for _, r := range runs {
		if r.Status != StatusTimeout && !(r.Status == StatusRunning || r.Status == StatusQueued) {
			t.Errorf("slow step run %d: %s, want timeout", r.ID, r.Status)
		}
		if r.Ended != nil && r.Ended.Sub(r.Started) > 2*time.Second {
			t.Errorf("slow step ran %s despite [100ms]", r.Ended.Sub(r.Started))
		}
	}
}

// A sequence resumes where it stopped unless its header says restart.
func TestSequenceResumeAndRestart(t *testing.T) {
	d := testdb.SQLite(t)
	rec := &recorder{}
	src := `{rec} = rec
[SEQUENCE keep]
| {rec} k0 ok
| {rec} k1 ok
TERMINATE
[SEQUENCE again] restart
| {rec} a0 ok
| {rec} a1 ok
TERMINATE
`
	h := history{d}
	ctx := context.Background()
	must(t, h.setSeqPos(ctx, "keep", 1, time.Now()))
	must(t, h.setSeqPos(ctx, "again", 1, time.Now()))
	s := newScheduler(t, d, fastConfig("a"), func(s *Scheduler) {
		must(t, s.Register(rec.app()))
		must(t, s.LoadSequences(strings.NewReader(src), "r.seq"))
	})
	start(t, s)
	waitFor(t, "both sequences to end", 5*time.Second, func() bool {
		return len(rec.callsWith("k")) >= 1 && len(rec.callsWith("a")) >= 2
	})
	if got := strings.Join(rec.callsWith("k"), " "); got != "k1" {
		t.Errorf("keep ran %q, want it to resume at k1", got)
	}
	if got := strings.Join(rec.callsWith("a"), " "); got != "a0 a1" {
		t.Errorf("restart sequence ran %q, want a0 a1", got)
	}
}

// Run refuses to start when a sequence names an unregistered app.
func TestRunRejectsUnknownApps(t *testing.T) {
	d := testdb.SQLite(t)
	s := newScheduler(t, d, fastConfig("a"), func(s *Scheduler) {
		must(t, s.LoadSequences(strings.NewReader("{x} = detox\n[SEQUENCE s]\n| {x}\n"), "x.seq"))
	})
	err := s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), `x.seq:1: application "detox" is not registered`) {
		t.Fatalf("Run: %v", err)
	}
}

// With SkipIfStillRunning before Recover, a job that panicked once runs
// again at its next firing. (Swap the two wrappers in newCron and this
// fails: robfig/cron v3.0.1 loses the token on panic.)
func TestCronPanicOnceStillRuns(t *testing.T) {
	c := newCron(testLog(t))
	var calls atomic.Int32
	if _, err := c.AddFunc("@every 1s", func() {
		if calls.Add(1) == 1 {
			panic("first run panics")
		}
	}); err != nil {
		t.Fatal(err)
	}
	c.Start()
	defer c.Stop()
	waitFor(t, "a run after the panic", 5*time.Second, func() bool { return calls.Load() >= 2 })
}
