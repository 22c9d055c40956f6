package main

import (
	"context"
	"os"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/projects"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/stager"
)

// envProjectsConfig names the projects configuration file when
// --projects-config is not given.
const envProjectsConfig = "DYNAMO_PROJECTS_CONFIG"

func init() {
	serveFlag("projects-config", "", "projects/stager/estimator configuration (YAML: the projects section on its own); env "+envProjectsConfig)
	registerServeComponent(serveComponent{name: "projects", order: 60, setup: setupProjects})
}

// setupProjects builds the stager, the estimator and the project manager,
// mounts projects.Routes at /api/v1/projects and stager.Routes at
// /api/v1/stager, and publishes s.shared["projects"] (*projects.Manager),
// s.shared["stager"] (*stager.Stager) and s.shared["estimator"]
// (*estimator.Estimator, the file-operation daemon's Prioritizer).
//
// The configuration is --projects-config / DYNAMO_PROJECTS_CONFIG (the
// section on its own) or else the main configuration's projects: section;
// without either the component is off: it needs an X.509 credential.
func setupProjects(_ context.Context, s *serveEnv) (func(context.Context) error, error) {
	path := ""
	if p := s.flags["projects-config"]; p != nil {
		path = *p
	}
	if path == "" {
		path = os.Getenv(envProjectsConfig)
	}
	log := s.env.log.WithField("component", "projects")
	var cfg projects.Config
	switch {
	case path != "":
		c, err := projects.LoadConfig(path)
		if err != nil {
			return nil, usageError{err}
		}
		cfg = c
	case s.env.file.Projects != nil:
		cfg = *s.env.file.Projects
	default:
		log.Info("projects off: no projects: section (they need an X.509 credential)")
		return nil, nil
	}
	var reg prometheus.Registerer
	if r, ok := s.shared["metrics"].(*prometheus.Registry); ok {
		reg = r
	}
	svc, err := projects.NewServices(cfg, s.env.db, s.store, log, reg, nil)
	if err != nil {
		return nil, err
	}
	s.shared["projects"] = svc.Manager
	s.mount("/api/v1/projects", registry.Permission{Write: registry.Need{Role: registry.RoleUser, Target: registry.TargetRegistry}},
		func(rg *gin.RouterGroup) { projects.Routes(rg, svc.Manager) })
	s.mount("/api/v1/stager", registry.Permission{Write: registry.Need{Role: registry.RoleUser, Target: registry.TargetRegistry}},
		func(rg *gin.RouterGroup) { stager.Routes(rg, svc.Stager) })
	s.shared["stager"] = svc.Stager
	s.shared["estimator"] = svc.Estimator
	return svc.Run, nil
}
