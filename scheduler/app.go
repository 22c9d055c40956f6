// Package scheduler runs dynamo's applications (detox, dealer, consistency
// checks, request tracking...) on cron schedules and Dynamo-style sequences,
// with at most one inventory writer at a time, any number of parallel
// readers on consistent snapshots, operator pauses, a run history in the
// database, Prometheus metrics, and a writer lease so that two servers can
// share one database with one of them writing.
//
// Writers follow a plan/apply split: a writer application computes on a
// snapshot and returns a Plan; the scheduler applies it in one
// inventory.Store.Write (one database transaction) only when the
// application finished in time, without error, and while this server still
// holds the writer lease. A writer that fails or times out leaves nothing
// half-applied.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/inventory"
)

// Errors returned by the scheduler. Callers test them with errors.Is.
var (
	// ErrUnknownApp: no application is registered under the name.
	ErrUnknownApp = apierr.New(apierr.ErrNotFound, "unknown application")
	// ErrNoRun: no run with that id.
	ErrNoRun = apierr.New(apierr.ErrNotFound, "no such run")
	// ErrDuplicateApp: an application of that name is already registered.
	ErrDuplicateApp = errors.New("application already registered")
	// ErrBadApp: the App value is malformed (name, missing body).
	ErrBadApp = errors.New("invalid application")
	// ErrPaused: the application is paused by an operator.
	ErrPaused = apierr.NewCoded(apierr.ErrConflict, "paused", "application is paused")
	// ErrNotLeader: this server does not hold the writer lease, so it
	// does not run applications (the other server does).
	ErrNotLeader = apierr.NewCoded(apierr.ErrConflict, "not_leader", "this server does not hold the writer lease")
	// ErrTimeout: the run exceeded its timeout.
	ErrTimeout = errors.New("run timed out")
	// ErrLeaseLost: the writer lease was lost before the plan could be
	// applied; the plan was discarded.
	ErrLeaseLost = errors.New("writer lease lost")
	// ErrShuttingDown: the scheduler is stopping and takes no new runs.
	ErrShuttingDown = apierr.New(apierr.ErrUnavailable, "scheduler is shutting down")
	// ErrStopped: the run was cancelled by shutdown or lease loss.
	ErrStopped = errors.New("run cancelled")
)

// App is a named application. Exactly one of Run (read-only) or Plan
// (writer) is set, and Writer says which.
type App struct {
	// Name identifies the application: letters, digits and "_-.:+", e.g.
	// "detox:Physics", "dealer", "consistency:T2_X", "track-requests".
	Name string
	// Description is shown by `dynamo app list`.
	Description string
	// Writer apps return a plan that the scheduler applies to the
	// inventory; at most one writer runs at a time.
	Writer bool
	// Timeout bounds one run; 0 uses Config.DefaultTimeout. A sequence
	// step's [N] and a manual run's timeout override it.
	Timeout time.Duration
	// Run is the body of a read-only application. It must return when ctx
	// is done.
	Run func(ctx context.Context, e *Env) error
	// Plan is the body of a writer application: compute on e.Snapshot and
	// return the updates to apply (nil or empty: nothing to do). It must
	// not write the inventory itself, except through e.Commit when
	// MultiCommit is set.
	Plan func(ctx context.Context, e *Env) (*Plan, error)
	// MultiCommit gives a writer e.Commit, for the rare application that
	// must commit in several steps (each Commit is one transaction and
	// stays applied even if the run later fails). Leave it false: one plan,
	// one write, is the default and the safe path.
	MultiCommit bool
}

// Env is what a run gets.
type Env struct {
	// Snapshot is a consistent view of the inventory taken when the run
	// started (for writers: after taking the writer slot, so it includes
	// every earlier write).
	Snapshot *inventory.Snapshot
	// Args are the arguments of this run (from the sequence line, the
	// cron entry or the manual request).
	Args []string
	// Log carries the fields component=scheduler, app and run.
	Log *logrus.Entry
	// Now is the run's start time; use it instead of time.Now so that
	// runs are reproducible.
	Now time.Time
	// RunID is the id of the run's history row.
	RunID int64
	// DryRun is true when a writer runs read-only (a `{t}` sequence step
	// of a writer app): its plan is computed and counted, not applied.
	DryRun bool
	// Commit is set only for MultiCommit writers: it applies fn in one
	// inventory transaction now. It fails once the run's context is done
	// or the lease is lost.
	Commit func(ctx context.Context, fn func(*inventory.Txn) error) (inventory.WriteResult, error)
}

// Plan is what a writer returns: the updates to apply, in order, in one
// inventory transaction.
type Plan struct {
	// Updates are added first, in order.
	Updates []inventory.Update
	// Build, if set, runs after Updates inside the same transaction, for
	// updates that need ids allocated by the Txn (new objects) or that
	// must be computed against the writer's latest state.
	Build func(t *inventory.Txn) error
	// Summary is recorded in the log with the run.
	Summary string
}

// empty reports whether the plan has nothing to apply.
func (p *Plan) empty() bool { return p == nil || (len(p.Updates) == 0 && p.Build == nil) }

var appNameRE = regexp.MustCompile(`^[A-Za-z0-9_.+-]+(:[A-Za-z0-9_.+-]+)*$`)

// CheckAppName validates an application name.
func CheckAppName(name string) error {
	if len(name) > 128 || !appNameRE.MatchString(name) {
		return fmt.Errorf("%w: name %q: want letters, digits and _-.+, parts joined by ':' (at most 128 characters)", ErrBadApp, name)
	}
	return nil
}

func (a App) validate() error {
	if err := CheckAppName(a.Name); err != nil {
		return err
	}
	switch {
	case a.Writer && a.Plan == nil:
		return fmt.Errorf("%w: %s: a writer needs Plan", ErrBadApp, a.Name)
	case a.Writer && a.Run != nil:
		return fmt.Errorf("%w: %s: a writer has Plan, not Run", ErrBadApp, a.Name)
	case !a.Writer && a.Run == nil:
		return fmt.Errorf("%w: %s: a read-only app needs Run", ErrBadApp, a.Name)
	case !a.Writer && (a.Plan != nil || a.MultiCommit):
		return fmt.Errorf("%w: %s: a read-only app has Run, not Plan", ErrBadApp, a.Name)
	case a.Timeout < 0:
		return fmt.Errorf("%w: %s: negative timeout", ErrBadApp, a.Name)
	}
	return nil
}

// Register adds an application. It fails with ErrDuplicateApp or ErrBadApp.
// Register before Run: sequences and cron entries naming applications are
// checked when Run starts. Safe for concurrent use.
func (s *Scheduler) Register(a App) error {
	if err := a.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[a.Name]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicateApp, a.Name)
	}
	s.apps[a.Name] = &a
	return nil
}

// App returns the registered application of that name.
func (s *Scheduler) App(name string) (App, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[name]
	if !ok {
		return App{}, false
	}
	return *a, true
}

func (s *Scheduler) lookup(name string) (*App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownApp, name)
	}
	return a, nil
}

// AddCron adds a schedule of a component's own, for an application that
// must run without the operator configuring it (the request tracker). An
// entry of the configuration that already runs the same app wins: the
// operator's schedule replaces the default, so AddCron then does nothing
// and reports false. Call it before Run.
func (s *Scheduler) AddCron(e CronEntry) (bool, error) {
	if e.Name == "" {
		e.Name = e.App
	}
	if err := CheckAppName(e.App); err != nil {
		return false, err
	}
	if _, err := cronParser.Parse(e.Schedule); err != nil {
		return false, fmt.Errorf("%w: schedule %q: %v", ErrBadApp, e.Schedule, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return false, fmt.Errorf("%w: AddCron %s after Run", ErrBadApp, e.Name)
	}
	for _, c := range s.cfg.Cron {
		if c.App == e.App || c.Name == e.Name {
			return false, nil
		}
	}
	s.cfg.Cron = append(s.cfg.Cron, e)
	return true, nil
}
