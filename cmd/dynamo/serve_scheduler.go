package main

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

// envSchedulerConfig names the scheduler configuration file when
// --scheduler-config is not given.
const envSchedulerConfig = "DYNAMO_SCHEDULER_CONFIG"

// buildScheduler builds the scheduler with the built-in applications and
// mounts its routes at /api/v1/apps; components built after it register
// their applications on it. Its run holds or waits for the writer lease.
//
// The section comes from the main configuration's scheduler: or from a
// file of its own (--scheduler-config or DYNAMO_SCHEDULER_CONFIG).
func (s *server) buildScheduler(context.Context) error {
	sch, err := scheduler.New(s.cfg.scheduler, s.store, s.env.log.WithField("component", "scheduler"), s.metrics)
	if err != nil {
		return err
	}
	if err := sch.RegisterBuiltins(); err != nil {
		return fmt.Errorf("built-in apps: %w", err)
	}
	// The one writer: from here on every inventory write of every
	// component goes through the scheduler's lease fence, and the REST API
	// refuses writes while this server is not the holder.
	if err := sch.OwnInventoryWrites(); err != nil {
		return err
	}
	s.registry.SetWriteFence(sch.MayWrite)
	s.registry.SetAppLocks(sch)
	if s.ln.rest != nil {
		sch.SetAddress(restURL(s.ln.rest.Addr(), s.cfg.file.Registry.TLS.Cert != ""))
	}
	s.scheduler = sch
	s.mount("/api/v1/apps", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetApplication}}, sch.Routes)
	// Run checks the sequences and cron entries against the registered
	// apps, so components built after this one can still register theirs.
	s.addRun("scheduler", sch.Run)
	return nil
}

// restURL is the REST API's URL as other processes reach it: a wildcard
// listen address is advertised under the host name.
func restURL(a net.Addr, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return scheme + "://" + a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
