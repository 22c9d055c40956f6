package main

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/registry"
)

// buildRegistry builds the REST API (served on the bound REST listener)
// and its metrics registry, on which the other components register their
// collectors and mount their routes.
func (s *server) buildRegistry(context.Context) error {
	cfg := s.cfg.file.Registry
	if s.cfg.options.listen != "" {
		cfg.Listen = s.cfg.options.listen
	}
	log := s.env.log.WithField("component", "registry")
	srv, err := registry.New(registry.Options{Config: cfg, DB: s.env.db, Log: log, Inventory: s.store})
	if err != nil {
		return err
	}
	s.registry, s.metrics = srv, srv.Metrics()
	ln := s.ln.rest
	s.addRun("registry", func(ctx context.Context) error { return srv.Serve(ctx, ln) })
	return nil
}

// mount serves routes under prefix behind the registry's authentication
// and authorization (reads need perm.Read, everything else perm.Write).
func (s *server) mount(prefix string, perm registry.Permission, routes func(*gin.RouterGroup)) {
	if !s.registry.Mount(prefix, perm, routes) {
		s.log.WithField("prefix", prefix).Warn("routes not mounted")
	}
}
