package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/dynamo-go/dynamo/console"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/srm"
)

// buildConsole serves the operator console at / on the registry's server.
// It reads through the components built before it (one this server does
// not run shows as such) and acts only through fileop's API, the one the
// REST routes use, with the permission those routes have.
func (s *server) buildConsole(context.Context) error {
	src := console.Sources{Inventory: s.store, Requests: s.registry.Store(), Detox: detox.NewHistory(s.env.db)}
	if s.detox != nil {
		src.Watermarks = s.detox
		src.PolicyDiff = s.detox
	}
	if s.scheduler != nil {
		src.Scheduler = s.scheduler
	}
	if s.dealer != nil && s.dealer.History() != nil {
		src.Dealer = s.dealer.History()
	}
	if s.fileopAPI != nil {
		src.Transfers = s.fileopAPI
	}
	if s.consistency != nil {
		src.Consistency = s.consistency
	}
	if len(s.storageElements) == len(s.cfg.file.StorageElements) {
		src.StorageAreas = seAreas{names: s.cfg.file.StorageElements, servers: s.storageElements}
	}
	c, err := console.New(console.Options{Sources: src, Access: s.registry, Log: s.env.log.WithField("component", "console")})
	if err != nil {
		return err
	}
	if err := s.metrics.Register(c.Collector()); err != nil {
		return fmt.Errorf("console metrics: %w", err)
	}
	// Actions need what POST /api/v1/fileop/release and /cancel need.
	s.registry.MountPages("/", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetRegistry}},
		c.RenderError, c.Routes)
	// Comparing policies only plans: a standby's console answers it too.
	if !s.registry.MarkReadOnly(http.MethodPost, console.PathDiff) {
		return fmt.Errorf("console: %s not mounted", console.PathDiff)
	}
	return nil
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
