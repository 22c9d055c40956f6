package main

import (
	"context"
	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/registry"
)

// envConsistencyConfig names the consistency configuration file when
// --consistency-config is not given.
const envConsistencyConfig = "DYNAMO_CONSISTENCY_CONFIG"

// buildConsistency builds the consistency checker when configured (the
// consistency: section, --consistency-config or DYNAMO_CONSISTENCY_CONFIG):
// it registers one scheduler application consistency:<site> per
// configured site and mounts consistency.Routes at /api/v1/consistency.
// Runs happen only when the scheduler starts them: no loop of its own.
func (s *server) buildConsistency(context.Context) error {
	if s.cfg.consistency == nil {
		return nil
	}
	if consistencyActions == nil {
		return notWired("consistency", "no file-operation queue in this build")
	}
	acts, err := consistencyActions(s.env, s.store)
	if err != nil {
		return err
	}
	opts := driver.OptionsFromEnv()
	opts.Log = s.env.log.WithField("component", "driver")
	c, err := consistency.New(*s.cfg.consistency, s.env.db, s.store, acts, opts, s.metrics, s.env.log.WithField("component", "consistency"))
	if err != nil {
		return err
	}
	for _, a := range c.Apps() {
		if err := s.scheduler.Register(a); err != nil {
			return err
		}
	}
	s.consistency = c
	s.mount("/api/v1/consistency", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetRegistry}},
		func(rg *gin.RouterGroup) { consistency.Routes(rg, c) })
	return nil
}
