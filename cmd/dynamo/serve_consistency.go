package main

import (
	"context"
	"errors"
	"github.com/gin-gonic/gin"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

// envConsistencyConfig names the consistency configuration file when
// --consistency-config is not given.
const envConsistencyConfig = "DYNAMO_CONSISTENCY_CONFIG"

func init() {
	serveFlag("consistency-config", "", "site consistency configuration (YAML: the consistency section on its own); env "+envConsistencyConfig+"; empty: no consistency checks")
	registerServeComponent(serveComponent{name: "consistency", order: 60, setup: setupConsistency})
}

// setupConsistency builds the consistency checker when configured: it
// registers one scheduler application consistency:<site> per configured
// site on s.shared["scheduler"] and publishes the checker as
// s.shared["consistency"] (*consistency.Checker) for the REST server to
// mount consistency.Routes at /api/v1/consistency. Runs happen only when
// the scheduler starts them, so there is no loop of its own.
//
// Until the main configuration has a consistency: section, the section is
// read from its own file (--consistency-config or DYNAMO_CONSISTENCY_CONFIG).
func setupConsistency(_ context.Context, s *serveEnv) (func(context.Context) error, error) {
	path := ""
	if p := s.flags["consistency-config"]; p != nil {
		path = *p
	}
	if path == "" {
		path = os.Getenv(envConsistencyConfig)
	}
	var cfg consistency.Config
	switch {
	case path != "":
		c, err := loadConsistencyConfig(path)
		if err != nil {
			return nil, err
		}
		cfg = c
	case s.env.file.Consistency != nil:
		cfg = *s.env.file.Consistency
	default:
		return nil, nil
	}
	if consistencyActions == nil {
		return nil, errors.New("configured, but no file-operation queue is wired into this build")
	}
	acts, err := consistencyActions(s.env, s.store)
	if err != nil {
		return nil, err
	}
	var reg prometheus.Registerer
	if r, ok := s.shared["metrics"].(*prometheus.Registry); ok {
		reg = r
	}
	opts := driver.OptionsFromEnv()
	opts.Log = s.env.log.WithField("component", "driver")
	c, err := consistency.New(cfg, s.env.db, s.store, acts, opts, reg, s.env.log.WithField("component", "consistency"))
	if err != nil {
		return nil, err
	}
	if sch, ok := s.shared["scheduler"].(*scheduler.Scheduler); ok {
		for _, a := range c.Apps() {
			if err := sch.Register(a); err != nil {
				return nil, err
			}
		}
	}
	s.shared["consistency"] = c
	s.mount("/api/v1/consistency", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetRegistry}},
		func(rg *gin.RouterGroup) { consistency.Routes(rg, c) })
	return nil, nil
}
