package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

//go:embed sample_inventory.json
var sampleInventory []byte

func init() { registerCommand(newServeCmd) }

// serveComponent is one part of `dynamo serve` (the REST API, the
// scheduler, the file-operation daemon, embedded storage elements...).
// Components are set up in ascending order, then all run concurrently
// until the context ends; the first one to fail stops the others. Each
// lives in its own serve_<name>.go file and registers from init.
type serveComponent struct {
	name  string
	order int // setup order: lower first (the registry's router before what mounts on it)
	// setup prepares the component and returns its run function (nil if it
	// has nothing to run). It may publish values in s.shared for
	// components set up after it.
	setup func(ctx context.Context, s *serveEnv) (run func(ctx context.Context) error, err error)
}

var serveComponents []serveComponent

func registerServeComponent(c serveComponent) { serveComponents = append(serveComponents, c) }

// serveEnv is what components get.
type serveEnv struct {
	*env
	store  *inventory.Store
	flags  map[string]*string // string flags components declared (see serveFlag)
	shared map[string]any     // values components publish for later ones
	mounts []routeMount       // REST routes for the registry to serve
}

// routeMount is a component's group of REST routes: the registry mounts
// each under its prefix, behind its one authentication and authorization
// middleware (reads need perm.Read, everything else perm.Write).
type routeMount struct {
	prefix string
	perm   registry.Permission
	routes func(*gin.RouterGroup)
}

// mount asks the registry to serve routes under prefix.
func (s *serveEnv) mount(prefix string, perm registry.Permission, routes func(*gin.RouterGroup)) {
	s.mounts = append(s.mounts, routeMount{prefix, perm, routes})
}

// serveFlags lets components declare string flags of `dynamo serve`
// (e.g. --listen) from their own files.
var serveFlags = map[string]struct{ def, usage string }{}

func serveFlag(name, def, usage string) { serveFlags[name] = struct{ def, usage string }{def, usage} }

func newServeCmd(g *globalOptions) *cobra.Command {
	var sample bool
	flagVals := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the orchestrator: migrate, load the inventory, run every component until SIGINT/SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			start := time.Now()
			e, err := g.open(ctx, true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			log := e.log.WithField("component", "serve")
			s, err := e.loadInventory(ctx)
			if err != nil {
				return err
			}
			if (sample || e.cfg.Serve.SampleInventory) && len(s.Snapshot().Sites()) == 0 {
				if err := injectSample(ctx, s); err != nil {
					return err
				}
				log.Info("injected the built-in sample inventory")
			}
			for _, u := range siteUsages(s.Snapshot()) {
				log.WithFields(logrus.Fields{"site": u.Site, "partition": u.Partition, "quota": humanBytes(u.Quota),
					"used": humanBytes(u.Used), "projected": humanBytes(u.Projected)}).Info("site partition")
			}
			return runComponents(ctx, &serveEnv{env: e, store: s, flags: flagVals, shared: map[string]any{}}, log, start, e.cfg.Serve.Grace())
		},
	}
	cmd.Flags().BoolVar(&sample, "sample", false, "inject a small built-in inventory if the database has no sites")
	for name, f := range serveFlags {
		flagVals[name] = cmd.Flags().String(name, f.def, f.usage)
	}
	return cmd
}

// runComponents sets up every registered component in order, runs them,
// and on shutdown gives them grace to finish.
func runComponents(ctx context.Context, s *serveEnv, log *logrus.Entry, start time.Time, grace time.Duration) error {
	comps := append([]serveComponent(nil), serveComponents...)
	sort.SliceStable(comps, func(i, j int) bool { return comps[i].order < comps[j].order })
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	grp, gctx := errgroup.WithContext(runCtx)
	var names []string
	for _, c := range comps {
		run, err := c.setup(ctx, s)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		names = append(names, c.name)
		if run != nil {
			c := c
			grp.Go(func() error {
				if err := run(gctx); err != nil {
					return fmt.Errorf("%s: %w", c.name, err)
				}
				return nil
			})
		}
	}
	log.WithFields(logrus.Fields{"db": s.db.Name, "seq": s.store.Seq(), "components": names,
		"startup_seconds": time.Since(start).Seconds()}).Info("ready; stop with Ctrl-C or SIGTERM")
	select {
	case <-ctx.Done():
		log.WithField("grace", grace.String()).Info("shutting down")
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
		log.Info("stopped")
		return nil
	case <-time.After(grace):
		return fmt.Errorf("components still running after the %s grace period", grace)
	}
}

func injectSample(ctx context.Context, s *inventory.Store) error {
	doc, err := inventory.DecodeInjectDoc(bytes.NewReader(sampleInventory))
	if err != nil {
		return fmt.Errorf("built-in sample: %w", err)
	}
	_, err = s.Inject(ctx, time.Now(), doc)
	return err
}
