package main

import (
	"context"
	"fmt"
	"os"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/fileop"
	_ "github.com/dynamo-go/dynamo/fileop/driver/all"
)

// The file-operation daemon. Its settings come from --fileop-config (a
// YAML file holding what the main configuration's `fileop:` section will
// hold once the lead adds it); without one the defaults apply (native
// backend, sites' inventory backend URLs as PFN prefixes).
//
// It publishes the daemon as s.shared["fileop"] (*fileop.Daemon). If an
// earlier component published s.shared["api"] (*gin.RouterGroup for
// /api/v1) the REST routes are mounted under /fileop, and metrics go to
// s.shared["prometheus"] (prometheus.Registerer) when present.
func init() {
	serveFlag("fileop-config", "", "YAML file with the file-operation daemon's settings (the fileop: section)")
	registerServeComponent(serveComponent{name: "fileop", order: 40, setup: setupFileop})
}

func setupFileop(_ context.Context, s *serveEnv) (func(context.Context) error, error) {
	cfg := fileop.DefaultConfig()
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
	reg, _ := s.shared["prometheus"].(prometheus.Registerer)
	d, err := fileop.New(cfg, s.store, s.env.log.WithField("component", "fileop"), fileop.Options{Registerer: reg})
	if err != nil {
		return nil, err
	}
	s.shared["fileop"] = d
	if rg, ok := s.shared["api"].(*gin.RouterGroup); ok {
		(&fileop.API{DB: s.env.db, Wake: d.Wake}).Routes(rg.Group("/fileop"))
	}
	return d.Run, nil
}
