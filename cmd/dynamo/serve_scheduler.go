package main

import (
	"context"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/scheduler"
)

// envSchedulerConfig names the scheduler configuration file when
// --scheduler-config is not given.
const envSchedulerConfig = "DYNAMO_SCHEDULER_CONFIG"

func init() {
	serveFlag("scheduler-config", "", "scheduler configuration (YAML: the scheduler section on its own); env "+envSchedulerConfig)
	registerServeComponent(serveComponent{name: "scheduler", order: 50, setup: setupScheduler})
}

// setupScheduler builds the scheduler, registers the built-in apps and
// publishes it as s.shared["scheduler"] (*scheduler.Scheduler) so that
// later components register their applications on it (Register) and the
// REST server mounts its routes (Routes) at /api/v1/apps.
//
// Until the main configuration has a scheduler: section, the section is
// read from its own file (--scheduler-config or DYNAMO_SCHEDULER_CONFIG);
// without one the defaults apply.
func setupScheduler(_ context.Context, s *serveEnv) (func(context.Context) error, error) {
	cfg := s.env.file.Scheduler
	// A separate file (the scheduler section on its own) still works, for
	// the two-server tests and for operators who keep it apart.
	path := ""
	if p := s.flags["scheduler-config"]; p != nil {
		path = *p
	}
	if path == "" {
		path = os.Getenv(envSchedulerConfig)
	}
	if path != "" {
		var err error
		if cfg, err = scheduler.LoadConfig(path); err != nil {
			return nil, err
		}
	}
	var reg prometheus.Registerer
	if r, ok := s.shared["metrics"].(*prometheus.Registry); ok {
		reg = r
	}
	sch, err := scheduler.New(cfg, s.store, s.env.log.WithField("component", "scheduler"), reg)
	if err != nil {
		return nil, err
	}
	if err := sch.RegisterBuiltins(); err != nil {
		return nil, fmt.Errorf("built-in apps: %w", err)
	}
	s.shared["scheduler"] = sch
	// Run checks the sequences and cron entries against the registered
	// apps, so components set up after this one can still register theirs.
	return sch.Run, nil
}
