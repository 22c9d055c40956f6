package main

import (
	"context"

	"github.com/gin-gonic/gin"

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
	s.mount("/api/v1/projects", registry.Permission{Write: registry.Need{Role: registry.RoleUser, Target: registry.TargetRegistry}},
		func(rg *gin.RouterGroup) { projects.Routes(rg, svc.Manager) })
	s.mount("/api/v1/stager", registry.Permission{Write: registry.Need{Role: registry.RoleUser, Target: registry.TargetRegistry}},
		func(rg *gin.RouterGroup) { stager.Routes(rg, svc.Stager) })
	// The stager's and the manager's loops copy files and move projects
	// along: background writers, so only the writer-lease holder runs
	// them (two servers would stage the same files twice).
	return s.scheduler.AddWorker(scheduler.Worker{Name: "projects", Run: svc.Run})
}
