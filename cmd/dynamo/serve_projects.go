package main

import (
	"context"
	"fmt"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/delegation"
	"github.com/dynamo-go/dynamo/internal/gridauth"

	"github.com/dynamo-go/dynamo/projects"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
	"github.com/dynamo-go/dynamo/stager"
)

// envProjectsConfig names the projects configuration file when
// --projects-config is not given.
const envProjectsConfig = "DYNAMO_PROJECTS_CONFIG"

// buildProjects builds the stager, the estimator and the project manager
// and mounts projects.Routes at /api/v1/projects and stager.Routes at
// /api/v1/stager. The configuration is --projects-config /
// DYNAMO_PROJECTS_CONFIG (the section on its own) or else the main
// configuration's projects: section; without either the component is off:
// it needs an X.509 credential.
func (s *server) buildProjects(context.Context) error {
	log := s.env.log.WithField("component", "projects")
	if s.cfg.projects == nil {
		log.Info("projects off: no projects: section (they need an X.509 credential)")
		return nil
	}
	svc, err := projects.NewServices(*s.cfg.projects, s.env.db, s.store, log, s.metrics, nil)
	if err != nil {
		return err
	}
	s.projects = svc
	// Delivered files are accesses: popularity sees what projects read.
	svc.Manager.RecordAccessesWith(deliveredAccesses{d: s.env.db, store: s.store, mayWrite: s.scheduler.MayWrite})
	if err := s.mountDelegation(svc.Delegations, log); err != nil {
		return err
	}
	s.mount("/api/v1/projects", registry.Permission{Write: registry.Need{Role: registry.RoleUser, Target: registry.TargetRegistry}},
		func(rg *gin.RouterGroup) { projects.Routes(rg, svc.Manager) })
	s.mount("/api/v1/stager", registry.Permission{Write: registry.Need{Role: registry.RoleUser, Target: registry.TargetRegistry}},
		func(rg *gin.RouterGroup) { stager.Routes(rg, svc.Stager) })
	// The stager's and the manager's loops copy files and move projects
	// along: background writers, so only the writer-lease holder runs
	// them (two servers would stage the same files twice).
	return s.scheduler.AddWorker(scheduler.Worker{Name: "projects", Run: svc.Run})
}

// mountDelegation serves the users' delegation endpoint at
// /api/v1/delegation. Delegating needs a caller authenticated by a client
// certificate or proxy, so without registry.tls.ca_dir there is nobody
// who could: the routes are left out and users' stager requests fail with
// the reason (no delegated credential).
func (s *server) mountDelegation(store *delegation.Store, log *logrus.Entry) error {
	caDir := s.cfg.file.Registry.TLS.CADir
	if caDir == "" {
		log.Warn("delegation endpoint off: the REST API accepts no client certificates (registry.tls.ca_dir); users' stager requests will fail for want of a delegated credential")
		return nil
	}
	cas, err := gridauth.LoadCADir(caDir)
	if err != nil {
		return fmt.Errorf("delegation: registry.tls.ca_dir: %w", err)
	}
	need := registry.Need{Role: registry.RoleUser, Target: registry.TargetRegistry}
	s.mount("/api/v1/delegation", registry.Permission{Read: need, Write: need},
		func(rg *gin.RouterGroup) { delegation.Routes(rg, store, cas) })
	log.WithField("max_lifetime", store.Config().MaxLifetime.String()).Info("delegation endpoint at /api/v1/delegation")
	return nil
}
