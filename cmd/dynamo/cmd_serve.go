package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/projects"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
	"github.com/dynamo-go/dynamo/srm"
)

//go:embed sample_inventory.json
var sampleInventory []byte

func init() { registerCommand(newServeCmd) }

// serveOptions are the flags of `dynamo serve`. A component that needs a
// flag adds a field here and its line in newServeCmd.
type serveOptions struct {
	sample            bool
	listen            string // REST API address; empty: registry.listen
	schedulerConfig   string // the scheduler section in a file of its own
	dealerConfig      string
	fileopConfig      string
	consistencyConfig string
	projectsConfig    string
}

func newServeCmd(g *globalOptions) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the orchestrator: check the configuration, listen, migrate, load the inventory, run every component until SIGINT/SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return serveUntil(ctx, g, o, nil)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.sample, "sample", false, "inject a small built-in inventory if the database has no sites")
	f.StringVar(&o.listen, "listen", "", "REST API address (default: registry.listen, 127.0.0.1:8080)")
	f.StringVar(&o.schedulerConfig, "scheduler-config", "", "scheduler configuration (YAML: the scheduler section on its own); env "+envSchedulerConfig)
	f.StringVar(&o.dealerConfig, "dealer-config", "", "dealer configuration (YAML: the dealer section on its own); env "+envDealerConfig)
	f.StringVar(&o.fileopConfig, "fileop-config", "", "YAML file with the file-operation daemon's settings (the fileop: section)")
	f.StringVar(&o.consistencyConfig, "consistency-config", "", "site consistency configuration (YAML: the consistency section on its own); env "+envConsistencyConfig+"; empty: no consistency checks")
	f.StringVar(&o.projectsConfig, "projects-config", "", "projects/stager/estimator configuration (YAML: the projects section on its own); env "+envProjectsConfig)
	return cmd
}

// serveUntil is `dynamo serve` until ctx ends: configure, build, run.
// built, when set, sees the server before it runs.
func serveUntil(ctx context.Context, g *globalOptions, o serveOptions, built func(*server)) error {
	start := time.Now()
	e, err := g.configure()
	if err != nil {
		return err
	}
	srv, err := newServer(ctx, e, o)
	if err != nil {
		return err
	}
	defer srv.close()
	if built != nil {
		built(srv)
	}
	return srv.run(ctx, start, e.cfg.Serve.ShutdownGrace)
}

// server is `dynamo serve` assembled: one typed field per component, built
// by newServer in a fixed, visible order. A component is a field, a
// constructor call in assemble and, if it runs, an entry in runs.
type server struct {
	env   *env
	cfg   serveConfig
	log   *logrus.Entry
	ln    *serveListeners
	store *inventory.Store

	metrics         *prometheus.Registry
	registry        *registry.Server
	scheduler       *scheduler.Scheduler
	storageElements []*srm.Server
	seDBs           []*db.DB           // the storage elements' request databases
	projects        *projects.Services // nil: off (no projects section)
	fileop          *fileop.Daemon
	fileopAPI       *fileop.API // the queue's REST API, which the console shares
	dealer          *dealer.Dealer
	detox           *detox.Runner
	consistency     *consistency.Checker // nil: no consistency section

	runs []serveRun // what runs, in start order
	// ready, when set, is called once every component runs (the demo
	// drives the system from there).
	ready func()
}

// serveRun is one long-running part of the server.
type serveRun struct {
	name string
	run  func(context.Context) error
}

// newServer builds `dynamo serve` in its start-up order:
//
//  1. the configuration and every file it names (policies, sequences,
//     partitions, rule files, component sections): a bad file fails here;
//  2. every listener (REST API, storage elements): a busy port fails here;
//  3. only then the database (migrated) and the inventory;
//  4. the components, each from what was built before it.
//
// Nothing with a side effect (a migration, an injection, the writer lease)
// happens before 1 and 2 succeeded. The lease is taken by the scheduler's
// run, after newServer returns; the sample inventory is injected by a
// worker of the lease holder, like every other inventory write.
func newServer(ctx context.Context, e *env, o serveOptions) (*server, error) {
	cfg, err := loadServeConfig(e, o)
	if err != nil {
		return nil, err
	}
	ln, err := bindListeners(cfg)
	if err != nil {
		return nil, err
	}
	if err := e.openDB(ctx, true); err != nil {
		ln.close()
		return nil, err
	}
	store, err := e.loadInventoryDefs(ctx, cfg.partitions)
	if err != nil {
		ln.close()
		e.db.Close()
		return nil, err
	}
	log := e.log.WithField("component", "serve")
	for _, u := range siteUsages(store.Snapshot()) {
		log.WithFields(logrus.Fields{"site": u.Site, "partition": u.Partition, "quota": bytesize.Format(u.Quota),
			"used": bytesize.Format(u.Used), "projected": bytesize.Format(u.Projected)}).Info("site partition")
	}
	s, err := assemble(ctx, e, cfg, ln, store)
	if err != nil {
		ln.close()
		e.db.Close()
		return nil, err
	}
	return s, nil
}

// assemble builds the components over an open database and a loaded
// inventory, in dependency order: the REST API and its metrics registry
// first (the others register metrics and mount routes on it), then the
// scheduler (the others register applications on it), then the rest. On
// error, what was built is closed except the listeners and the database,
// which belong to the caller.
func assemble(ctx context.Context, e *env, cfg serveConfig, ln *serveListeners, store *inventory.Store) (*server, error) {
	s := &server{env: e, cfg: cfg, ln: ln, store: store, log: e.log.WithField("component", "serve")}
	steps := []struct {
		name  string
		build func(context.Context) error
	}{
		{"registry", s.buildRegistry},
		{"scheduler", s.buildScheduler},
		{"injections", s.buildInjections},
		{"storage-elements", s.buildStorageElements},
		{"projects", s.buildProjects},
		{"fileop", s.buildFileop},
		{"dealer", s.buildDealer},
		{"requests", s.buildRequests},
		{"detox", s.buildDetox},
		{"consistency", s.buildConsistency},
		{"console", s.buildConsole}, // last: it reads what every other component serves
	}
	for _, st := range steps {
		if err := st.build(ctx); err != nil {
			s.closeComponents()
			return nil, fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return s, nil
}

// addRun appends a long-running part, started by run in this order.
func (s *server) addRun(name string, run func(context.Context) error) {
	s.runs = append(s.runs, serveRun{name, run})
}

// run runs every part until ctx ends or one fails, then gives them grace
// to finish.
func (s *server) run(ctx context.Context, start time.Time, grace time.Duration) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	grp, gctx := errgroup.WithContext(runCtx)
	var names []string
	for _, r := range s.runs {
		names = append(names, r.name)
		grp.Go(func() error {
			err := r.run(gctx)
			s.log.WithField("name", r.name).Debug("component stopped")
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			return nil
		})
	}
	s.log.WithFields(logrus.Fields{"db": s.env.db.Name, "seq": s.store.Seq(), "components": names,
		"startup_seconds": time.Since(start).Seconds()}).Info("ready; stop with Ctrl-C or SIGTERM")
	if s.ready != nil {
		s.ready()
	}
	select {
	case <-ctx.Done():
		s.log.WithField("grace", grace.String()).Info("shutting down")
	case <-gctx.Done():
	}
	// Components see their context end only now, so a signal stops
	// scheduling first and lets work in flight finish within the grace.
	cancel()
	done := make(chan error, 1)
	go func() { done <- grp.Wait() }()
	select {
	case err := <-done:
		if err != nil && ctx.Err() == nil {
			return err
		}
		s.log.Info("stopped")
		return nil
	case <-time.After(grace):
		return fmt.Errorf("components still running after the %s grace period", grace)
	}
}

// closeComponents releases what the components hold open outside their
// runs (the storage elements' request databases, the delegation
// directory).
func (s *server) closeComponents() {
	if s.projects != nil {
		if err := s.projects.Close(); err != nil {
			s.log.WithError(err).Warn("closing the delegation directory")
		}
	}
	for _, d := range s.seDBs {
		d.Close()
	}
}

// close releases everything: components, listeners not served, database.
func (s *server) close() {
	s.closeComponents()
	s.ln.close()
	s.env.db.Close()
}

// buildInjections adds the lease holder's workers that inject: the queue
// of injection documents (registry.inject_interval) and, with --sample or
// serve.sample_inventory, the built-in sample when the inventory has no
// sites. Both write through the scheduler, so only the holder injects.
func (s *server) buildInjections(context.Context) error {
	log := s.env.log.WithField("component", "registry")
	if interval := s.cfg.file.Registry.InjectInterval; interval > 0 {
		err := s.scheduler.AddWorker(scheduler.Worker{Name: "injection-queue", Run: func(ctx context.Context) error {
			return registry.RunInjectionLoop(ctx, s.store, log, interval)
		}})
		if err != nil {
			return err
		}
	}
	if s.cfg.options.sample || s.env.cfg.Serve.SampleInventory {
		return s.scheduler.AddWorker(scheduler.Worker{Name: "sample-inventory", Run: func(ctx context.Context) error {
			if len(s.store.Snapshot().Sites()) > 0 {
				return nil
			}
			if err := injectSample(ctx, s.store); err != nil {
				return fmt.Errorf("sample inventory: %w", err)
			}
			s.log.Info("injected the built-in sample inventory")
			return nil
		}})
	}
	return nil
}

// injectSample injects through s.Inject, which a sealed store sends
// through its writer.
func injectSample(ctx context.Context, s *inventory.Store) error {
	doc, err := inventory.DecodeInjectDoc(bytes.NewReader(sampleInventory))
	if err != nil {
		return fmt.Errorf("built-in sample: %w", err)
	}
	_, err = s.Inject(ctx, time.Now(), doc)
	return err
}

// errNotWired names an input an enabled component needs and this build or
// configuration does not give it.
var errNotWired = errors.New("enabled, but its input is not wired")
