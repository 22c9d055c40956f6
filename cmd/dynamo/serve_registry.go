package main

import (
	"context"

	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

func init() {
	serveFlag("listen", "", "REST API address (default: registry.listen, 127.0.0.1:8080)")
	registerServeComponent(serveComponent{name: "registry", order: 10, setup: setupRegistry})
}

// setupRegistry builds the REST API and publishes, for components set up
// later:
//
//	s.shared["registry"] *registry.Server        (Mount routes, Store for requests/locks)
//	s.shared["metrics"]  *prometheus.Registry    (register collectors; served at /metrics)
func setupRegistry(ctx context.Context, s *serveEnv) (func(context.Context) error, error) {
	cfg := s.env.file.Registry
	if l := *s.flags["listen"]; l != "" {
		cfg.Listen = l
	}
	log := s.log.WithField("component", "registry")
	srv, err := registry.New(registry.Options{Config: cfg, DB: s.db, Log: log, Inventory: s.store})
	if err != nil {
		return nil, err
	}
	s.shared["registry"] = srv
	s.shared["metrics"] = srv.Metrics()
	interval, _ := cfg.InjectIntervalDuration()
	return func(ctx context.Context) error {
		// Run functions start after every component's setup, so the
		// scheduler (order 50) is published by now.
		if sch, ok := s.shared["scheduler"].(*scheduler.Scheduler); ok {
			srv.Mount("/api/v1/apps", registry.Permission{
				Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetApplication},
			}, sch.Routes)
		}
		for _, m := range s.mounts {
			if !srv.Mount(m.prefix, m.perm, m.routes) {
				log.WithField("prefix", m.prefix).Warn("routes not mounted")
			}
		}
		if interval > 0 {
			// Stand-in writer for queued injections until the scheduler
			// calls registry.ApplyQueuedInjections from its writer.
			go func() { _ = registry.RunInjectionLoop(ctx, s.store, log, interval) }()
		}
		return srv.Run(ctx)
	}, nil
}
