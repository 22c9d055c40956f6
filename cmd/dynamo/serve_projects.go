package main

import (
	"context"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/projects"
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
	if path == "" {
		log.Info("projects off: no --projects-config or " + envProjectsConfig)
		return nil, nil
	}
	cfg, err := projects.LoadConfig(path)
	if err != nil {
		return nil, usageError{err}
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
	s.shared["stager"] = svc.Stager
	s.shared["estimator"] = svc.Estimator
	return svc.Run, nil
}
