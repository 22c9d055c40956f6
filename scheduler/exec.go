package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/inventory"
)

// runRequest asks for one run of an application.
type runRequest struct {
	App         string
	Args        []string
	Timeout     time.Duration // 0: the app's, else the default
	ReadOnly    bool          // run a writer as a dry run
	Trigger     string
	TriggerName string
}

// pendingRun is a run recorded as queued, waiting to execute.
type pendingRun struct {
	t      *term
	app    *App
	req    runRequest
	writer bool // write-enabled: takes the writer slot and applies its plan
	run    Run
}

// begin checks the app and its pause and records the run as queued. A
// paused app is recorded as skipped and ErrPaused returned (with the Run).
// On success the caller must call complete.
func (s *Scheduler) begin(ctx context.Context, t *term, req runRequest) (*pendingRun, Run, error) {
	a, err := s.lookup(req.App)
	if err != nil {
		return nil, Run{}, err
	}
	if req.Args == nil {
		req.Args = []string{}
	}
	now := time.Now().UTC()
	p := &pendingRun{t: t, app: a, req: req, writer: a.Writer && !req.ReadOnly}
	p.run = Run{App: a.Name, Args: req.Args, Writer: p.writer, Trigger: req.Trigger, TriggerName: req.TriggerName,
		Server: s.cfg.ServerID, Started: now, Status: StatusQueued}
	lock, paused, err := s.hist.lock(ctx, a.Name)
	if err != nil {
		return nil, Run{}, err
	}
	if !paused {
		// Dynamo's application lock stops scheduling as a pause does.
		q, err := s.hist.activityQueue(ctx, a.Name)
		if err != nil {
			return nil, Run{}, err
		}
		if h := holder(q); h != nil {
			paused = true
			lock = Lock{App: a.Name, By: h.User, At: h.LockTime, Reason: "application lock (applock)"}
			if h.Service != "" {
				lock.By += " (service " + h.Service + ")"
			}
			if h.Note != nil && *h.Note != "" {
				lock.Reason += ": " + *h.Note
			}
		}
	}
	if paused {
		r := p.run
		r.Status = StatusSkipped
		r.Ended = &now
		r.Error = fmt.Sprintf("paused by %s at %s: %s", lock.By, lock.At.Format(time.RFC3339), lock.Reason)
		id, err := s.hist.insertRun(ctx, r)
		if err != nil {
			return nil, Run{}, err
		}
		r.ID = id
		s.m.runs.WithLabelValues(a.Name, StatusSkipped).Inc()
		s.log.WithFields(logrus.Fields{"app": a.Name, "trigger": req.Trigger, "paused_by": lock.By}).Info("skipped: application paused")
		return nil, r, fmt.Errorf("%w: %s (%s)", ErrPaused, a.Name, r.Error)
	}
	s.mu.Lock()
	if s.closing || s.term != t {
		s.mu.Unlock()
		return nil, Run{}, ErrShuttingDown
	}
	s.inFlight.Add(1) // under mu, so that shutdown's Wait cannot miss it
	s.mu.Unlock()
	id, err := s.hist.insertRun(ctx, p.run)
	if err != nil {
		s.inFlight.Done()
		return nil, Run{}, err
	}
	p.run.ID = id
	return p, p.run, nil
}

type outcome struct {
	plan *Plan
	err  error
}

// complete waits for a slot, runs the application under its timeout,
// applies a writer's plan in one inventory write, and records the result.
// It returns when the run ends or its context does: it never waits for an
// application that ignores cancellation (whose result is then discarded,
// which is safe because only complete applies plans).
func (s *Scheduler) complete(p *pendingRun) Run {
	defer s.inFlight.Done()
	r := p.run
	bg := context.WithoutCancel(p.t.runs) // recording outlives cancellation
	log := s.log.WithFields(logrus.Fields{"app": r.App, "run": r.ID, "trigger": r.Trigger})
	slot, kind := s.readers, "reader"
	if p.writer {
		slot, kind = s.writer, "writer"
	}
	select {
	case slot <- struct{}{}:
	case <-p.t.sched.Done():
		return s.record(bg, log, r, StatusCancelled, fmt.Errorf("%w: stopped before it started", ErrStopped))
	case <-p.t.runs.Done():
		return s.record(bg, log, r, StatusCancelled, fmt.Errorf("%w: stopped before it started", ErrStopped))
	}
	defer func() { <-slot }()
	s.m.inFlight.WithLabelValues(kind).Inc()
	defer s.m.inFlight.WithLabelValues(kind).Dec()

	r.Started = time.Now().UTC()
	r.Status = StatusRunning
	if err := s.hist.markRunning(bg, r.ID, r.Started); err != nil {
		log.WithError(err).Warn("recording run start")
	}
	timeout := p.req.Timeout
	if timeout == 0 {
		timeout = p.app.Timeout
	}
	if timeout == 0 {
		timeout = s.cfg.DefaultTimeout
	}
	rctx, cancel := context.WithTimeout(p.t.runs, timeout)
	defer cancel()
	env := &Env{
		Snapshot: s.store.Snapshot(), // after taking the slot: a writer sees every earlier write
		Args:     append([]string(nil), p.req.Args...),
		Log:      log,
		Now:      r.Started,
		RunID:    r.ID,
		DryRun:   p.app.Writer && !p.writer,
	}
	var committed commitCount
	var closeCommit func()
	if p.writer && p.app.MultiCommit {
		env.Commit, closeCommit = s.committer(rctx, &committed)
		defer closeCommit()
	}
	log.WithFields(logrus.Fields{"args": p.req.Args, "timeout": timeout.String(), "writer": p.writer}).Info("run started")

	ch := make(chan outcome, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				log.WithField("stack", string(debug.Stack())).Error("application panicked")
				ch <- outcome{err: fmt.Errorf("panic: %v", v)}
			}
		}()
		if p.app.Writer {
			plan, err := p.app.Plan(rctx, env)
			ch <- outcome{plan: plan, err: err}
			return
		}
		ch <- outcome{err: p.app.Run(rctx, env)}
	}()
	var out outcome
	select {
	case out = <-ch:
	case <-rctx.Done():
	}
	if closeCommit != nil {
		closeCommit() // no Commit may start or still be running from here on
	}
	r.Updates = committed.n
	// "Finished in time" is judged here: a result that raced the deadline
	// is discarded like a late one.
	if err := rctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && p.t.runs.Err() == nil {
			return s.record(bg, log, r, StatusTimeout, fmt.Errorf("%w after %s", ErrTimeout, timeout))
		}
		return s.record(bg, log, r, StatusCancelled, fmt.Errorf("%w: shutdown or lease loss", ErrStopped))
	}
	if out.err != nil {
		return s.record(bg, log, r, StatusFailed, out.err)
	}
	if !p.app.Writer {
		return s.record(bg, log, r, StatusOK, nil)
	}
	if out.plan.empty() {
		return s.record(bg, log, r, StatusOK, nil)
	}
	if !p.writer {
		r.Planned = planSize(out.plan, s.rawWrite)
		log.WithFields(logrus.Fields{"planned": r.Planned, "summary": out.plan.Summary}).Info("dry run: plan not applied")
		return s.record(bg, log, r, StatusOK, nil)
	}
	// Fence: apply only while the lease is ours with a heartbeat to spare;
	// the change log's sequence numbers catch anything this misses.
	if s.fence() != nil {
		return s.record(bg, log, r, StatusFailed, fmt.Errorf("%w: plan of %s discarded", ErrLeaseLost, r.App))
	}
	planned := 0
	res, err := s.fencedWrite(p.t.runs, time.Now(), func(t *inventory.Txn) error {
		if err := t.Add(out.plan.Updates...); err != nil {
			return err
		}
		if out.plan.Build != nil {
			if err := out.plan.Build(t); err != nil {
				return err
			}
		}
		planned = len(t.Updates())
		return nil
	}, log)
	r.Planned = planned + committed.n
	if err != nil {
		return s.record(bg, log, r, StatusFailed, fmt.Errorf("apply plan: %w", err))
	}
	r.Updates += res.Updates
	r.FirstSeq, r.LastSeq = res.FirstSeq, res.LastSeq
	if out.plan.Summary != "" {
		log = log.WithField("summary", out.plan.Summary)
	}
	return s.record(bg, log, r, StatusOK, nil)
}

// planSize counts a dry-run plan's updates by building it on a throwaway
// transaction: Write with a function that fails after building writes
// nothing.
func planSize(p *Plan, write func(context.Context, time.Time, func(*inventory.Txn) error) (inventory.WriteResult, error)) int {
	n := len(p.Updates)
	if p.Build == nil {
		return n
	}
	errDry := errors.New("dry run")
	_, _ = write(context.Background(), time.Now(), func(t *inventory.Txn) error {
		if err := t.Add(p.Updates...); err == nil {
			if err := p.Build(t); err == nil {
				n = len(t.Updates())
			}
		}
		return errDry
	})
	return n
}

type commitCount struct {
	mu sync.Mutex
	n  int
}

// committer gives a MultiCommit writer its Commit function; close revokes
// it, waiting for a Commit in progress.
func (s *Scheduler) committer(rctx context.Context, c *commitCount) (func(context.Context, func(*inventory.Txn) error) (inventory.WriteResult, error), func()) {
	closed := false
	commit := func(ctx context.Context, fn func(*inventory.Txn) error) (inventory.WriteResult, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if closed || rctx.Err() != nil {
			return inventory.WriteResult{}, ErrStopped
		}
		if s.fence() != nil {
			return inventory.WriteResult{}, ErrLeaseLost
		}
		res, err := s.fencedWrite(rctx, time.Now(), fn, s.log)
		c.n += res.Updates
		return res, err
	}
	return commit, func() { c.mu.Lock(); closed = true; c.mu.Unlock() }
}

// record finishes a run: history row, metrics, log.
func (s *Scheduler) record(ctx context.Context, log *logrus.Entry, r Run, status string, err error) Run {
	end := time.Now().UTC()
	r.Ended, r.Status = &end, status
	if err != nil {
		r.Error = err.Error()
	}
	if herr := s.hist.finishRun(ctx, r); herr != nil {
		log.WithError(herr).Error("recording run end")
	}
	d := end.Sub(r.Started)
	s.m.duration.WithLabelValues(r.App, status).Observe(d.Seconds())
	s.m.runs.WithLabelValues(r.App, status).Inc()
	if r.Updates > 0 {
		s.m.updates.WithLabelValues(r.App).Add(float64(r.Updates))
	}
	if status == StatusOK {
		s.m.lastSuccess.WithLabelValues(r.App).Set(float64(end.UnixNano()) / 1e9)
	}
	l := log.WithFields(logrus.Fields{"status": status, "seconds": d.Seconds(), "updates": r.Updates})
	if err != nil {
		l.WithError(err).Warn("run ended")
	} else {
		l.Info("run ended")
	}
	return r
}

// RunRequest asks for a run now (REST run-now, `dynamo app run`).
type RunRequest struct {
	App      string
	Args     []string
	Timeout  time.Duration // 0: the app's or the default
	ReadOnly bool          // a writer app's dry run
	By       string        // who asked, recorded as the trigger name
	// Wait blocks until the run ends (or ctx does; the run goes on).
	Wait bool
}

// RunNow runs an application on demand. It returns the recorded run:
// queued (Wait false), or ended (Wait true and it ended before ctx). It
// fails with ErrNotLeader on a standby, ErrUnknownApp, ErrShuttingDown,
// or ErrPaused (the skip is recorded and returned with the error).
func (s *Scheduler) RunNow(ctx context.Context, req RunRequest) (Run, error) {
	t, err := s.currentTerm()
	if err != nil {
		return Run{}, err
	}
	p, r, err := s.begin(ctx, t, runRequest{App: req.App, Args: req.Args, Timeout: req.Timeout, ReadOnly: req.ReadOnly,
		Trigger: TriggerManual, TriggerName: req.By})
	if err != nil {
		return r, err
	}
	done := make(chan Run, 1)
	go func() { done <- s.complete(p) }()
	if !req.Wait {
		return r, nil
	}
	select {
	case r := <-done:
		return r, nil
	case <-ctx.Done():
		return s.hist.run(context.WithoutCancel(ctx), r.ID)
	}
}

// cronJob is one firing of a cron entry.
func (s *Scheduler) cronJob(t *term, req runRequest, jitter time.Duration) {
	if jitter > 0 && !sleepCtx(t.sched, rand.N(jitter)) {
		return
	}
	if t.sched.Err() != nil {
		return
	}
	p, _, err := s.begin(t.sched, t, req)
	if err != nil {
		if !errors.Is(err, ErrPaused) && !errors.Is(err, ErrShuttingDown) {
			s.log.WithError(err).WithField("cron", req.TriggerName).Error("cron run not started")
		}
		return
	}
	s.complete(p)
}
