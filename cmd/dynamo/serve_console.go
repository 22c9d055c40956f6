package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/console"
	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
	"github.com/dynamo-go/dynamo/srm"
)

func init() {
	// Last: it reads what every other component published.
	registerServeComponent(serveComponent{name: "console", order: 95, setup: setupConsole})
}

// setupConsole serves the operator console at / on the registry's server.
// It reads through what the other components published (a component this
// server does not run shows as such) and acts only through fileop's API,
// the one the REST routes use, with the same permission they have.
func setupConsole(_ context.Context, s *serveEnv) (func(context.Context) error, error) {
	srv, ok := s.shared["registry"].(*registry.Server)
	if !ok {
		return nil, fmt.Errorf("the console needs the registry's server")
	}
	src := console.Sources{Inventory: s.store, Requests: srv.Store(), Detox: detox.NewHistory(s.env.db)}
	if r, ok := s.shared["detox"].(*detox.Runner); ok {
		src.Watermarks = r
	}
	if h, ok := s.shared["dealer.history"].(*dealer.History); ok {
		src.Dealer = h
	}
	if a, ok := s.shared["fileop.api"].(*fileop.API); ok {
		src.Transfers = a
	}
	if c, ok := s.shared["consistency"].(*consistency.Checker); ok {
		src.Consistency = c
	}
	if sch, ok := s.shared["scheduler"].(*scheduler.Scheduler); ok {
		src.Scheduler = sch
	}
	if ses, ok := s.shared["storage-elements"].([]*srm.Server); ok && len(ses) == len(s.env.file.StorageElements) {
		src.StorageAreas = seAreas{names: s.env.file.StorageElements, servers: ses}
	}
	c, err := console.New(console.Options{Sources: src, Access: srv, Log: s.env.log.WithField("component", "console")})
	if err != nil {
		return nil, err
	}
	if reg, ok := s.shared["metrics"].(*prometheus.Registry); ok {
		if err := reg.Register(c.Collector()); err != nil {
			return nil, fmt.Errorf("console metrics: %w", err)
		}
	}
	// Actions need what POST /api/v1/fileop/release and /cancel need.
	srv.MountPages("/", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetRegistry}},
		c.RenderError, c.Routes)
	return nil, nil
}

// seAreas lists the storage areas of the embedded SE named like a site.
type seAreas struct {
	names   []EmbeddedSE
	servers []*srm.Server
}

func (a seAreas) StorageAreas(site string) []console.Area {
	for i, se := range a.names {
		if se.Name != site {
			continue
		}
		var out []console.Area
		for _, ar := range a.servers[i].Namespace().Areas() {
			out = append(out, console.Area{Name: ar.Config.Name, Prefix: ar.Config.Prefix, Latency: ar.Config.AccessLatency,
				Retention: ar.Config.RetentionPolicy, Used: ar.Used(), Free: ar.Free()})
		}
		return out
	}
	return nil
}
