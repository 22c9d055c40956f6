package main

import (
	"context"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/fileop"
	_ "github.com/dynamo-go/dynamo/fileop/driver/all"
	"github.com/dynamo-go/dynamo/registry"
)

// The file-operation daemon. Its settings come from --fileop-config (a
// YAML file holding what the main configuration's `fileop:` section will
// hold once the lead adds it); without one the defaults apply (native
// backend, sites' inventory backend URLs as PFN prefixes).
//
// It publishes the daemon as s.shared["fileop"] (*fileop.Daemon), mounts
// the REST routes at /api/v1/fileop, registers its metrics on
// s.shared["metrics"], and uses s.shared["estimator"] as its Prioritizer
// when the projects component published one.
func init() {
	serveFlag("fileop-config", "", "YAML file with the file-operation daemon's settings (the fileop: section)")
	registerServeComponent(serveComponent{name: "fileop", order: 40, setup: setupFileop})
}

func setupFileop(_ context.Context, s *serveEnv) (func(context.Context) error, error) {
	cfg := s.env.file.Fileop
	if p := *s.flags["fileop-config"]; p != "" {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("--fileop-config: %w", err)
		}
		cfg, err = fileop.LoadConfig(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--fileop-config %s: %w", p, err)
		}
	}
	var reg prometheus.Registerer
	if r, ok := s.shared["metrics"].(*prometheus.Registry); ok {
		reg = r
	}
	d, err := fileop.New(cfg, s.store, s.env.log.WithField("component", "fileop"), fileop.Options{Registerer: reg})
	if err != nil {
		return nil, err
	}
	s.shared["fileop"] = d
	api := &fileop.API{DB: s.env.db, Wake: d.Wake}
	s.mount("/api/v1/fileop", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetRegistry}}, api.Routes)
	// The estimator (projects component, set up after this one) ranks
	// transfers by their source's locality; every setup is done when the
	// run functions start.
	return func(ctx context.Context) error {
		if p, ok := s.shared["estimator"].(fileop.Prioritizer); ok {
			d.SetPrioritizer(p)
		}
		return d.Run(ctx)
	}, nil
}
