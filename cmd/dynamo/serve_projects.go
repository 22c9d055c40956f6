package main

import (
	"context"
	"github.com/gin-gonic/gin"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/projects"
	"github.com/dynamo-go/dynamo/registry"
)

// envProjectsConfig names the projects configuration file when
// --projects-config is not given.
const envProjectsConfig = "DYNAMO_PROJECTS_CONFIG"

func init() {
	serveFlag("projects-config", "", "projects/stager/estimator configuration (YAML: the projects section on its own); env "+envProjectsConfig)
	registerServeComponent(serveComponent{name: "projects", order: 60, setup: setupProjects})
}

// setupProjects builds the stager, the estimator and the project manager
// and publishes them as s.shared["projects"] (*projects.Manager, for
// projects.Routes at /api/v1/projects), s.shared["stager"]
// (*stager.Stager, for stager.Routes at /api/v1/stager) and
// s.shared["estimator"] (*estimator.Estimator, whose Priority method the
// file-operation daemon's Prioritizer can use).
//
// Until the main configuration has a projects: section, the section is
// read from its own file (--projects-config or DYNAMO_PROJECTS_CONFIG);
// without one the component is off: it needs an X.509 credential.
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
	s.shared["stager"] = svc.Stager
	s.shared["estimator"] = svc.Estimator
	return svc.Run, nil
}
