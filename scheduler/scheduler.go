package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// Scheduler runs registered applications on cron entries and sequences
// while this server holds the writer lease, records every run, and serves
// its state over REST (Routes). Construct it with New, Register the
// applications, then call Run once.
type Scheduler struct {
	cfg   Config
	store *inventory.Store
	hist  history
	log   *logrus.Entry
	m     *metrics
	lease *lease

	mu      sync.Mutex
	apps    map[string]*App
	seqs    *SequenceFile // nil: no sequences
	seqName string        // the sequences file, for messages
	term    *term         // the current leadership term, nil on a standby
	running bool          // Run was called
	closing bool          // shutdown started: no new runs

	writer  chan struct{} // the writer slot: at most one writer runs
	readers chan struct{} // reader slots

	inFlight sync.WaitGroup // runs between begin and the end of complete
	leader   atomic.Bool

	raw     *inventory.WriteCapability // set by OwnInventoryWrites
	workers []Worker                   // lease-scoped background writers
	seen    seenLease                  // the lease as last read
}

// term is one period during which this server holds the lease and
// schedules. sched ends when scheduling stops (shutdown or lease loss);
// runs ends when running applications must stop (after the grace, or at
// once on lease loss).
type term struct {
	sched      context.Context
	stopSched  context.CancelFunc
	runs       context.Context
	cancelRuns context.CancelFunc
	cron       *cron.Cron
	loops      sync.WaitGroup // sequence goroutines
	work       context.Context
	stopWork   context.CancelFunc
	workers    sync.WaitGroup // lease-scoped workers
}

// New builds a scheduler over the inventory store. It loads the sequences
// file named by cfg.Sequences (a file that does not parse is an error with
// line numbers). reg receives the metrics; nil uses a fresh registry.
func New(cfg Config, store *inventory.Store, log *logrus.Entry, reg prometheus.Registerer) (*Scheduler, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Scheduler{
		cfg:     cfg,
		store:   store,
		hist:    history{store.DB()},
		log:     log.WithField("server", cfg.ServerID),
		m:       m,
		lease:   &lease{d: store.DB(), self: cfg.ServerID, period: cfg.LeasePeriod},
		apps:    map[string]*App{},
		writer:  make(chan struct{}, 1),
		readers: make(chan struct{}, cfg.MaxReaders),
	}
	if cfg.Sequences != "" {
		f, err := os.Open(cfg.Sequences)
		if err != nil {
			return nil, fmt.Errorf("scheduler.sequences: %w", err)
		}
		defer f.Close()
		if err := s.LoadSequences(f, cfg.Sequences); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// LoadSequences parses a sequences file and makes it the scheduler's
// (replacing any earlier one). Call it before Run. name is used in error
// messages, which carry line numbers.
func (s *Scheduler) LoadSequences(r io.Reader, name string) error {
	f, err := ParseSequences(r, name, nil)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("scheduler: sequences must be loaded before Run")
	}
	s.seqs, s.seqName = f, name
	return nil
}

// Config returns the effective configuration (defaults applied).
func (s *Scheduler) Config() Config { return s.cfg }

// Leader reports whether this server holds the writer lease now. Other
// components that write the inventory (REST writes) should refuse with
// 409 while it is false.
func (s *Scheduler) Leader() bool { return s.leader.Load() }

// check verifies that every application named by the sequences and cron
// entries is registered and used consistently.
func (s *Scheduler) check() error {
	if s.seqs != nil {
		if err := s.seqs.Check(s.App, s.seqName); err != nil {
			return err
		}
	}
	for i, e := range s.cfg.Cron {
		if _, ok := s.App(e.App); !ok {
			return fmt.Errorf("scheduler.cron[%d] (%s): %w: %q", i, e.Name, ErrUnknownApp, e.App)
		}
	}
	return nil
}

// Run holds or waits for the writer lease and, while it holds it, runs
// the cron entries and sequences. A standby replays the inventory change
// log every Config.ReplayInterval so that its reads stay current and it
// can take over at once. When ctx ends: scheduling stops, running applications get
// Config.Grace to finish, the rest are cancelled through their context,
// and the lease is released so that a standby takes over without waiting
// for it to expire. Run returns nil after a clean shutdown; it fails at
// once if a sequence or cron entry names an unknown application.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("scheduler: Run called twice")
	}
	s.running = true
	s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if err := s.lease.ensure(ctx); err != nil {
		return err
	}
	hb := s.cfg.Heartbeat
	timer := time.NewTimer(0)
	defer timer.Stop()
	var t *term
	// A standby tries for the lease at nextLead and, between those
	// attempts, replays the change log every ReplayInterval, so that its
	// reads lag the holder's writes by that interval rather than by a
	// whole heartbeat.
	var nextLead time.Time
	replayFailing := false
	for {
		select {
		case <-ctx.Done():
			s.shutdown(t)
			return nil
		case <-timer.C:
		}
		if t == nil && time.Now().Before(nextLead) {
			replayFailing = s.replay(ctx, replayFailing)
			timer.Reset(min(s.cfg.ReplayInterval, time.Until(nextLead)))
			continue
		}
		next := hb
		if t == nil {
			var expires time.Time
			t, expires = s.tryLead(ctx)
			// A standby wakes up right when the holder's lease ends
			// rather than up to a heartbeat later, so that a takeover
			// after a crash takes at most the lease period.
			if until := time.Until(expires); t == nil && until > 0 && until < hb {
				next = until + 5*time.Millisecond
			}
			if t == nil {
				nextLead = time.Now().Add(next)
				next = min(next, s.cfg.ReplayInterval)
			}
		} else if !s.keepLead(ctx) {
			s.stepDown(t)
			t = nil
			nextLead = time.Time{}
		}
		timer.Reset(next)
	}
}

// replay is a standby's catch-up between lease attempts. failing says
// whether the previous one failed: a database that stays unreachable is
// logged once, not at every interval (the lease attempts log it too).
func (s *Scheduler) replay(ctx context.Context, failing bool) bool {
	_, err := s.store.CatchUp(ctx)
	if err != nil && ctx.Err() == nil {
		if !failing {
			s.log.WithError(err).Error("replaying the inventory change log")
		}
		return true
	}
	if err == nil && failing {
		s.log.Info("replaying the inventory change log again")
	}
	return false
}

// tryLead catches up with the change log and tries to take the lease;
// on success it catches up again (the previous holder may have written
// after the first pass) and starts a term. Otherwise it returns when the
// current holder's lease expires (zero if unknown).
func (s *Scheduler) tryLead(ctx context.Context) (*term, time.Time) {
	if _, err := s.store.CatchUp(ctx); err != nil && ctx.Err() == nil {
		s.log.WithError(err).Error("replaying the inventory change log")
		return nil, time.Time{}
	}
	prev, perr := ReadLease(ctx, s.store.DB())
	if perr == nil {
		s.seen.Store(prev)
	}
	ok, err := s.lease.tryAcquire(ctx, time.Now())
	if err != nil {
		if ctx.Err() == nil {
			s.log.WithError(err).Warn("writer lease")
		}
		return nil, time.Time{}
	}
	if !ok {
		return nil, prev.Expires
	}
	n, err := s.store.CatchUp(ctx)
	if err != nil {
		s.log.WithError(err).Error("replaying the inventory change log after taking the lease; giving it up")
		_ = s.lease.release(context.WithoutCancel(ctx))
		return nil, time.Time{}
	}
	if k, err := s.hist.abandonRuns(ctx, s.cfg.ServerID, time.Now()); err != nil {
		s.log.WithError(err).Warn("marking runs of the previous holder abandoned")
	} else if k > 0 {
		s.log.WithField("runs", k).Warn("runs of the previous lease holder marked abandoned")
	}
	s.log.WithFields(logrus.Fields{"previous_holder": prev.Holder, "replayed": n, "seq": s.store.Seq()}).
		Info("took the writer lease; scheduling applications")
	return s.startTerm(), time.Time{}
}

// keepLead renews the lease; it reports false when the lease is lost or
// can no longer be trusted (renewals failing until it would expire).
func (s *Scheduler) keepLead(ctx context.Context) bool {
	now := time.Now()
	ok, err := s.lease.renew(ctx, now)
	if err != nil {
		if ctx.Err() != nil {
			return true // shutting down: Run handles it
		}
		s.log.WithError(err).Warn("writer lease renewal failed")
		// Still ours until it would expire; step down a heartbeat early
		// so that no write starts on a lease another server may take.
		if s.lease.valid(time.Now(), s.cfg.Heartbeat) {
			return true
		}
		s.lease.drop()
		return false
	}
	if !ok {
		s.log.Error("writer lease taken by another server; stopping scheduling")
	}
	return ok
}

func (s *Scheduler) startTerm() *term {
	t := &term{}
	t.sched, t.stopSched = context.WithCancel(context.Background())
	t.runs, t.cancelRuns = context.WithCancel(context.Background())
	t.work, t.stopWork = context.WithCancel(context.Background())
	t.cron = newCron(s.log)
	for _, e := range s.cfg.Cron {
		req := runRequest{App: e.App, Args: e.Args, Timeout: e.Timeout, ReadOnly: e.ReadOnly,
			Trigger: TriggerCron, TriggerName: e.Name}
		jitter := e.Jitter
		// Validated in Config.Validate, so AddFunc cannot fail on the spec.
		if _, err := t.cron.AddFunc(e.Schedule, func() { s.cronJob(t, req, jitter) }); err != nil {
			s.log.WithError(err).WithField("cron", e.Name).Error("cron entry not scheduled")
		}
	}
	s.mu.Lock()
	s.term = t
	seqs := s.seqs
	s.mu.Unlock()
	s.leader.Store(true)
	s.m.leaseHeld.Set(1)
	if l, err := ReadLease(t.sched, s.store.DB()); err == nil {
		s.seen.Store(l)
	}
	s.startWorkers(t)
	t.cron.Start()
	if seqs != nil {
		for _, q := range seqs.Sequences {
			t.loops.Add(1)
			go func() {
				defer t.loops.Done()
				s.runSequence(t, q)
			}()
		}
	}
	return t
}

// stopScheduling ends a term's scheduling: no new runs, cron stopped, the
// sequence loops returned. Runs in flight continue.
func (s *Scheduler) stopScheduling(t *term) {
	s.mu.Lock()
	if s.term == t {
		s.term = nil
	}
	s.mu.Unlock()
	t.stopSched()
	<-t.cron.Stop().Done() // returns once cron's own job goroutines end
	t.loops.Wait()
}

// stepDown ends a term after the lease was lost: nothing more may be
// written, so running applications are cancelled at once (a writer's plan
// would be refused anyway).
func (s *Scheduler) stepDown(t *term) {
	s.leader.Store(false)
	s.m.leaseHeld.Set(0)
	t.cancelRuns()
	s.stopWorkers(t)
	s.stopScheduling(t)
	s.inFlight.Wait()
	s.log.Warn("stepped down: standing by for the writer lease")
}

// shutdown stops scheduling, gives running applications the grace period,
// cancels what is left and releases the lease.
func (s *Scheduler) shutdown(t *term) {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	if t == nil {
		s.log.Info("scheduler stopped (standby)")
		return
	}
	grace := s.cfg.Grace
	s.log.WithField("grace", grace.String()).Info("scheduler stopping: no new runs; waiting for running applications")
	done := make(chan struct{})
	go func() {
		// Workers stop first (a file-operation daemon leaves its work in
		// flight for the next holder, which resumes it); cron's Stop waits
		// for its jobs, which are the runs themselves, so the grace covers
		// it too.
		s.stopWorkers(t)
		s.stopScheduling(t)
		s.inFlight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		s.log.Warn("grace period over: cancelling running applications")
		t.cancelRuns()
		// complete returns as soon as a run's context ends (it does not
		// wait for an application that ignores it), so this is short.
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.log.Error("runs still recording 5s after cancellation")
		}
	}
	t.cancelRuns()
	s.stopWorkers(t) // after the grace: nothing of this term may outlive the lease
	s.leader.Store(false)
	s.m.leaseHeld.Set(0)
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.lease.release(rctx); err != nil {
		s.log.WithError(err).Warn("writer lease not released; the standby takes over when it expires")
	}
	s.log.Info("scheduler stopped; writer lease released")
}

func (s *Scheduler) currentTerm() (*term, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, ErrShuttingDown
	}
	if s.term == nil || !s.leader.Load() {
		return nil, ErrNotLeader
	}
	return s.term, nil
}

// sleepCtx waits d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Schedule says when an application runs.
type Schedule struct {
	Kind string `json:"kind"` // cron or sequence
	Name string `json:"name"` // cron entry or sequence name
	Spec string `json:"spec"` // the cron expression, or the sequence line
}

// AppInfo is an application with its schedules, pause and last run.
type AppInfo struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Writer      bool       `json:"writer"`
	Timeout     string     `json:"timeout"`
	Schedules   []Schedule `json:"schedules"`
	Paused      *Lock      `json:"paused,omitempty"`
	// AppLock is Dynamo's application lock, when held: the app is not
	// scheduled while it is.
	AppLock *AppLockState `json:"applock,omitempty"`
	LastRun *Run          `json:"last_run,omitempty"`
}

// Apps lists the registered applications, sorted by name.
func (s *Scheduler) Apps(ctx context.Context) ([]AppInfo, error) {
	locks, err := s.hist.locks(ctx)
	if err != nil {
		return nil, err
	}
	last, err := s.hist.lastRuns(ctx)
	if err != nil {
		return nil, err
	}
	held, err := s.hist.activityHolders(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	out := make([]AppInfo, 0, len(s.apps))
	for _, a := range s.apps {
		to := a.Timeout
		if to == 0 {
			to = s.cfg.DefaultTimeout
		}
		ai := AppInfo{Name: a.Name, Description: a.Description, Writer: a.Writer, Timeout: to.String(), Schedules: []Schedule{}}
		out = append(out, ai)
	}
	seqs := s.seqs
	s.mu.Unlock()
	for i := range out {
		ai := &out[i]
		for _, e := range s.cfg.Cron {
			if e.App == ai.Name {
				ai.Schedules = append(ai.Schedules, Schedule{Kind: "cron", Name: e.Name, Spec: e.Schedule})
			}
		}
		if seqs != nil {
			for _, q := range seqs.Sequences {
				for _, st := range q.Steps {
					if st.Kind == StepRun && st.App == ai.Name {
						ai.Schedules = append(ai.Schedules, Schedule{Kind: "sequence", Name: q.Name, Spec: stepText(st)})
					}
				}
			}
		}
		if l, ok := locks[ai.Name]; ok {
			ai.Paused = &l
		}
		if r, ok := last[ai.Name]; ok {
			ai.LastRun = &r
		}
		ai.AppLock = held[ai.Name]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func stepText(st Step) string {
	title := "{" + st.Title + "}"
	if st.Write {
		title = "<" + st.Title + ">"
	}
	s := fmt.Sprintf("line %d: %s %s", st.Line, st.OnFail, title)
	if len(st.Args) > 0 {
		s += " " + joinArgs(st.Args)
	}
	return s
}

// Runs lists recorded runs, newest first.
func (s *Scheduler) Runs(ctx context.Context, f RunFilter) ([]Run, error) { return s.hist.runs(ctx, f) }

// GetRun returns one recorded run.
func (s *Scheduler) GetRun(ctx context.Context, id int64) (Run, error) { return s.hist.run(ctx, id) }

// Pause stops an application from running until Resume: scheduled runs
// are skipped (and recorded as skipped); a run in progress is not
// interrupted. Pausing a paused app updates who and why. The app must be
// registered (ErrUnknownApp). Works on any server: locks live in the
// database.
func (s *Scheduler) Pause(ctx context.Context, app, by, reason string) (Lock, error) {
	if _, err := s.lookup(app); err != nil {
		return Lock{}, err
	}
	l := Lock{App: app, By: by, Reason: reason, At: time.Now().UTC()}
	if err := s.hist.pause(ctx, l); err != nil {
		return Lock{}, err
	}
	s.log.WithFields(logrus.Fields{"app": app, "by": by, "reason": reason}).Info("application paused")
	return l, nil
}

// Resume lifts a pause. It reports whether the app was paused.
func (s *Scheduler) Resume(ctx context.Context, app string) (bool, error) {
	if _, err := s.lookup(app); err != nil {
		return false, err
	}
	ok, err := s.hist.resume(ctx, app)
	if err == nil && ok {
		s.log.WithField("app", app).Info("application resumed")
	}
	return ok, err
}

// Status describes this server's scheduler.
type Status struct {
	Server string    `json:"server"`
	Leader bool      `json:"leader"`
	Lease  LeaseInfo `json:"lease"`
	Seq    uint64    `json:"inventory_seq"`
}

// Status returns the lease and this server's role.
func (s *Scheduler) Status(ctx context.Context) (Status, error) {
	l, err := ReadLease(ctx, s.store.DB())
	return Status{Server: s.cfg.ServerID, Leader: s.Leader(), Lease: l, Seq: s.store.Seq()}, err
}

// DB returns the database the scheduler records in.
func (s *Scheduler) DB() *db.DB { return s.store.DB() }
