package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/inventory"
)

func init() { registerCommand(newDemoCmd) }

// demoOptions adjust one demo run.
type demoOptions struct {
	Dir  string // "" = a fresh temporary directory, removed at the end
	Keep bool   // keep serving after the report until ctx ends
	// Listen is the REST API's address; "" = a free loopback port.
	Listen string
	Out    io.Writer
	Seed   uint64 // 0 = random
	// kept, when set, is called once the report is printed and the demo
	// keeps serving (tests drive the running federation from there).
	kept func(*demoRun)
}

func newDemoCmd(g *globalOptions) *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR] [--keep] [--listen ADDR]",
		Short: "Run the whole system on a throwaway federation: placement, verified transfers, cleaning to watermarks, delivery to a consumer",
		Long: `demo builds a temporary federation under DIR (default: a temporary directory,
removed at the end): two embedded SRM storage elements (one disk, one
tape-emulating), a file:// site, a grid PKI, a SQLite database and one
configuration file. It injects a small experiment with real files and
checksums, then shows the Dealer placing a copy request, the file-operation
daemon transferring and verifying it, Detox cleaning a site over its high
watermark down to its low one, and a project delivering a dataset to a
consumer. It ends with a report checked against the inventory and the disks.
With --keep the server stays up (REST API, SEs) until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			o.Out = g.stdout
			_, err := runDemo(ctx, o)
			return err
		},
	}
	cmd.Flags().StringVar(&o.Dir, "dir", "", "directory for everything the demo creates (must be empty or new; kept afterwards)")
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "keep the server running after the report, until Ctrl-C")
	cmd.Flags().Uint64Var(&o.Seed, "seed", 0, "seed for the synthetic experiment (0: random)")
	cmd.Flags().StringVar(&o.Listen, "listen", "", "REST API address (default: a free loopback port)")
	return cmd
}

// errServerStopped: the serve components stopped before they were
// ready; runDemo replaces it with the components' own error.
var errServerStopped = errors.New("demo: the server stopped while starting")

// demoRun is the state shared by the demo's steps.
type demoRun struct {
	out    io.Writer
	start  time.Time
	l      *demoLayout
	e      *env
	s      *server
	store  *inventory.Store
	report *demoReport
}

func (r *demoRun) say(format string, args ...any) {
	fmt.Fprintf(r.out, "[%5.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// runDemo runs the demo and returns its report. The report is computed
// from the inventory and from the sites' disks after the steps; a
// disagreement between the two is an error.
func runDemo(ctx context.Context, o demoOptions) (rep *demoReport, err error) {
	r := &demoRun{out: o.Out, start: time.Now()}
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
	if r.l, err = prepareDemo(dir, o.Listen, rand.New(rand.NewPCG(seed, seed^0x5eed))); err != nil {
		return nil, usageError{err}
	}
	r.say("federation in %s (seed %d): PKI, 2 embedded SRM storage elements, 1 file:// site, SQLite", r.l.Dir, seed)

	logf, err := os.Create(r.l.LogFile)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	file, err := loadFileConfig(r.l.Config)
	if err != nil {
		return nil, fmt.Errorf("demo: generated configuration: %w", err)
	}
	log, err := logging.New(logf, "text", "debug")
	if err != nil {
		return nil, err
	}
	d, err := db.Open(ctx, r.l.DSN)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		return nil, err
	}
	r.e = &env{cfg: file.Config, file: file, log: log, db: d}
	if r.store, err = r.e.loadInventory(ctx); err != nil {
		return nil, err
	}
	doc, err := r.l.injectDoc()
	if err != nil {
		return nil, fmt.Errorf("demo: experiment: %w", err)
	}
	if _, err := r.store.Inject(ctx, time.Now(), doc); err != nil {
		return nil, fmt.Errorf("demo: inject: %w", err)
	}
	c := r.store.Snapshot().Counts()
	var bytes, files int64
	for _, ds := range r.l.Datasets {
		bytes += ds.size()
		for _, b := range ds.Blocks {
			files += int64(len(b.Files))
		}
	}
	r.say("injected the experiment: %d datasets, %d blocks, %d files, %s with adler32 checksums, written at %s",
		c.Datasets, c.Blocks, files, humanBytes(bytes), demoDiskSite)

	// The serve components, as `dynamo serve` assembles and runs them.
	cfg, err := loadServeConfig(r.e, serveOptions{})
	if err != nil {
		return nil, fmt.Errorf("demo: generated configuration: %w", err)
	}
	ln, err := bindListeners(cfg)
	if err != nil {
		return nil, err
	}
	if r.s, err = assemble(ctx, r.e, cfg, ln, r.store); err != nil {
		ln.close()
		return nil, err
	}
	defer r.s.closeComponents()
	defer ln.close()
	ready := make(chan struct{})
	r.s.ready = func() { close(ready) }
	runCtx, stopServe := context.WithCancel(ctx)
	var serveErr error
	served := make(chan struct{}) // closed once run returned serveErr
	go func() {
		defer close(served)
		serveErr = r.s.run(runCtx, r.start, 10*time.Second)
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
	r.say("serving: console http://%s/, REST API http://%s/api/v1, SRM httpg://localhost:%d and :%d, file-operation daemon, Dealer, projects (log: %s)",
		r.l.API, r.l.API, r.l.SRMPorts[demoDiskSite], r.l.SRMPorts[demoTapeSite], r.l.LogFile)

	r.report = &demoReport{}
	if r.report.Before, err = demoOccupancy(r.store.Snapshot()); err != nil {
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
		if o.kept != nil {
			o.kept(r)
		}
		<-ctx.Done()
		r.say("stopping")
	}
	return r.report, nil
}

// waitServing waits until the components are set up, both SEs answer and
// the REST API accepts requests.
func (r *demoRun) waitServing(ctx context.Context, ready, served <-chan struct{}) error {
	deadline := time.After(demoDeadline)
	// A server that stopped reports its error when runDemo returns.
	stopped := errServerStopped
	select {
	case <-ready:
	case <-served:
		return stopped
	case <-deadline:
		return errors.New("demo: the server did not start in time")
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, se := range r.s.storageElements {
		select {
		case <-se.Ready():
		case <-served:
			return stopped
		case <-deadline:
			return errors.New("demo: a storage element did not start in time")
		}
	}
	for {
		resp, err := http.Get("http://" + r.l.API + "/api/v1/sites")
		if err == nil {
			resp.Body.Close()
			// The steps write the inventory: wait for the writer lease too.
			if resp.StatusCode == http.StatusOK && r.s.scheduler.Leader() {
				return nil
			}
		}
		select {
		case <-served:
			return stopped
		case <-deadline:
			return fmt.Errorf("demo: REST API on %s not answering: %v", r.l.API, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// printExplore tells a --keep user where to look.
func (r *demoRun) printExplore() {
	api := "http://" + r.l.API
	fmt.Fprintf(r.out, `
The federation keeps running (Ctrl-C stops it; its files stay in %[1]s).
  Operator console: %[2]s/   (sign in to act with the token in %[7]s)
  curl %[2]s/api/v1/sites
  curl %[2]s/api/v1/copy-requests
  curl %[2]s/api/v1/fileop/status
  curl %[2]s/api/v1/projects
  curl %[2]s/api/v1/detox/cycles
  bin/dynamo --db %[3]s inventory sites
  bin/dynamo --db %[3]s inventory datasets '/Demo*'
  bin/dynamo --db %[3]s fileop history
  bin/dynamo --db %[3]s detox explain --partition Default --site %[4]s --dataset %[5]s
  DYNAMO_SERVER=%[2]s bin/dynamo project status demo-reco
  bin/dynamo serve --config %[6]s      # the same system later, from its configuration
`, r.l.Dir, api, r.l.DSN, demoFileSite, r.l.Datasets[0].Name, r.l.Config, r.l.OperatorToken)
}
