package main

import (
	"context"

	"github.com/dynamo-go/dynamo/fileop"
	_ "github.com/dynamo-go/dynamo/fileop/driver/all"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

// buildFileop builds the file-operation daemon and mounts its routes at
// /api/v1/fileop. Its settings are the fileop: section or --fileop-config;
// without either the defaults apply (native backend, sites' inventory
// backend URLs as PFN prefixes). The estimator, when projects are on,
// ranks transfers by their source's locality.
func (s *server) buildFileop(context.Context) error {
	o := fileop.Options{Registerer: s.metrics, Writer: s.scheduler}
	if s.projects != nil {
		o.Prioritizer = s.projects.Estimator
	}
	d, err := fileop.New(s.cfg.fileop, s.store, s.env.log.WithField("component", "fileop"), o)
	if err != nil {
		return err
	}
	s.fileop = d
	api := &fileop.API{DB: s.env.db, Wake: d.Wake, Inventory: s.store}
	s.fileopAPI = api // the console reads and acts through the same API
	s.mount("/api/v1/fileop", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetRegistry}}, api.Routes)
	// Only the writer-lease holder runs file operations: the daemon starts
	// when this server takes the lease (resuming the open batches of the
	// previous holder, verified in place before copying again) and stops
	// before it steps down. A standby never runs it.
	return s.scheduler.AddWorker(scheduler.Worker{Name: "fileop", Run: d.Run})
}
