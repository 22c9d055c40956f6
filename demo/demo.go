// Package demo runs the whole system on a throwaway federation and says
// what it did. It drives the system as production does: `dynamo serve`
// runs from the configuration the demo writes (Options.Serve), and every
// action after that goes through the REST API with an operator's token,
// the Dealer and Detox running as the scheduler's applications on the
// lease holder, so every inventory write goes through the one writer.
// Only the experiment's files are written by the demo itself, before the
// server starts, as an experiment writes its output to a storage element.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"
)

// Options adjust one demo run.
type Options struct {
	Dir  string // "" = a fresh temporary directory, removed at the end
	Keep bool   // keep serving after the report until ctx ends
	// Listen is the REST API's address; "" = a free loopback port.
	Listen string
	Out    io.Writer
	Seed   uint64 // 0 = random
	// Serve runs `dynamo serve` with the configuration file config,
	// logging to log, until ctx ends; it calls ready once every component
	// runs. Required.
	Serve func(ctx context.Context, config string, log io.Writer, ready func()) error
	// Kept, when set, is called once the report is printed and the demo
	// keeps serving (tests drive the running federation from there).
	Kept func(*Run)
}

// InputError marks a failure caused by what the caller asked for (a
// directory that is not empty, a busy --listen port): the command reports
// it as bad usage.
type InputError struct{ Err error }

func (e InputError) Error() string { return e.Err.Error() }
func (e InputError) Unwrap() error { return e.Err }

// errServerStopped: the server stopped before it was ready; Run replaces
// it with the server's own error.
var errServerStopped = errors.New("demo: the server stopped while starting")

// Run is the state shared by the demo's steps.
type Run struct {
	out    io.Writer
	start  time.Time
	l      *layout
	api    *apiClient
	report *Report
}

// OperatorToken is the file holding the demo operator's bearer token.
func (r *Run) OperatorToken() string { return r.l.OperatorToken }

// Datasets are the experiment's dataset names, in the order injected.
func (r *Run) Datasets() []string {
	var out []string
	for _, ds := range r.l.Datasets {
		out = append(out, ds.Name)
	}
	return out
}

func (r *Run) say(format string, args ...any) {
	fmt.Fprintf(r.out, "[%5.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// Start runs the demo and returns its report. The report is computed
// from what the server reports (fileop history, inventory) and from the
// sites' disks after the steps; a disagreement between the two is an
// error.
func Start(ctx context.Context, o Options) (rep *Report, err error) {
	if o.Serve == nil {
		return nil, errors.New("demo: no server to run")
	}
	r := &Run{out: o.Out, start: time.Now()}
	if r.out == nil {
		r.out = io.Discard
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "dynamo-demo-"); err != nil {
			return nil, fmt.Errorf("demo: temporary directory: %w", err)
		}
		if !o.Keep {
			// A failed run keeps its directory: the log is the way in.
			defer func() {
				if err == nil || r.l == nil {
					os.RemoveAll(dir)
				} else {
					fmt.Fprintf(r.out, "demo failed; its files and log are kept in %s\n", dir)
				}
			}()
		}
	}
	seed := o.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	if r.l, err = prepare(dir, o.Listen, rand.New(rand.NewPCG(seed, seed^0x5eed))); err != nil {
		return nil, InputError{err}
	}
	r.say("federation in %s (seed %d): PKI, 2 embedded SRM storage elements, 1 file:// site, SQLite", r.l.Dir, seed)
	if r.api, err = newAPIClient(r.l); err != nil {
		return nil, err
	}

	logf, err := os.Create(r.l.LogFile)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// `dynamo serve` on the generated configuration, as an operator
	// would start it.
	ready := make(chan struct{})
	runCtx, stopServe := context.WithCancel(ctx)
	var serveErr error
	served := make(chan struct{}) // closed once Serve returned serveErr
	go func() {
		defer close(served)
		serveErr = o.Serve(runCtx, r.l.Config, logf, func() { close(ready) })
	}()
	defer func() {
		stopServe()
		<-served
		if serveErr != nil && (err == nil || errors.Is(err, errServerStopped)) {
			err = fmt.Errorf("demo: server: %w", serveErr)
		}
	}()
	if err := r.waitServing(ctx, ready, served); err != nil {
		return nil, err
	}
	r.say("serving: console http://%s/, REST API http://%s/api/v1, SRM httpg://localhost:%d and :%d, file-operation daemon, scheduler with the Dealer and Detox, projects (log: %s)",
		r.l.API, r.l.API, r.l.SRMPorts[DiskSite], r.l.SRMPorts[TapeSite], r.l.LogFile)
	if err := r.inject(ctx); err != nil {
		return nil, err
	}

	r.report = &Report{}
	if r.report.Before, err = r.occupancy(ctx); err != nil {
		return nil, err
	}
	for _, step := range []func(context.Context) error{r.stepPlace, r.stepTransfer, r.stepClean, r.stepProject} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	if err := r.finishReport(ctx); err != nil {
		return r.report, err
	}
	r.report.Seconds = time.Since(r.start).Seconds()
	r.report.print(r.out)
	if o.Keep {
		r.printExplore()
		if o.Kept != nil {
			o.Kept(r)
		}
		<-ctx.Done()
		r.say("stopping")
	}
	return r.report, nil
}

// waitServing waits until every component runs, the REST API answers and
// this server holds the writer lease (the steps write through it).
func (r *Run) waitServing(ctx context.Context, ready, served <-chan struct{}) error {
	deadline := time.After(Deadline)
	select {
	case <-ready:
	case <-served:
		return errServerStopped
	case <-deadline:
		return errors.New("demo: the server did not start in time")
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		var st struct {
			Leader bool `json:"leader"`
		}
		err := r.api.get(ctx, "/api/v1/apps", nil, &st)
		if err == nil && st.Leader {
			return nil
		}
		if err == nil {
			err = errors.New("not the writer lease holder yet")
		}
		select {
		case <-served:
			return errServerStopped
		case <-deadline:
			return fmt.Errorf("demo: REST API on %s not ready: %v", r.l.API, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// printExplore tells a --keep user where to look.
func (r *Run) printExplore() {
	api := "http://" + r.l.API
	fmt.Fprintf(r.out, `
The federation keeps running (Ctrl-C stops it; its files stay in %[1]s).
  Operator console: %[2]s/   (sign in to act with the token in %[7]s)
  curl %[2]s/api/v1/sites
  curl %[2]s/api/v1/copy-requests
  curl %[2]s/api/v1/fileop/status
  curl %[2]s/api/v1/projects
  curl %[2]s/api/v1/detox/cycles
  curl %[2]s/api/v1/apps/runs
  bin/dynamo --db %[3]s inventory sites
  bin/dynamo --db %[3]s inventory datasets '/Demo*'
  bin/dynamo --db %[3]s fileop history
  bin/dynamo --db %[3]s detox explain --partition Default --site %[4]s --dataset %[5]s
  DYNAMO_SERVER=%[2]s DYNAMO_TOKEN_FILE=%[7]s bin/dynamo app run detox:Default
  DYNAMO_SERVER=%[2]s bin/dynamo project status demo-reco
  bin/dynamo serve --config %[6]s      # the same system later, from its configuration
`, r.l.Dir, api, r.l.DSN, FileSite, r.l.Datasets[0].Name, r.l.Config, r.l.OperatorToken)
}
