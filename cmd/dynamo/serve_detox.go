package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

// detoxSources are the inputs `dynamo serve` gives Detox's policies:
// registry locks, dataset accesses from detox_accesses, and the Dealer's
// enforcer rules for enforcer protection.
func detoxSources(d *db.DB, rs *registry.Store, store *inventory.Store, rules []*policy.EnforcerRules) detox.Sources {
	return detox.Sources{Accesses: detox.DBAccesses{DB: d}, Locks: registryLocks{rs}, EnforcerRules: rules}
}

// buildDetox mounts detox.Routes at /api/v1/detox and registers one writer
// application "detox:<partition>" per partition of the detox: section (run
// them from sequences or cron entries). Deletions go to the file-operation
// queue; producers listed in detox.assume_empty are treated as knowing
// nothing. Every policy was loaded once already by loadServeConfig.
func (s *server) buildDetox(context.Context) error {
	cfg := s.cfg.file.Detox
	r := &detox.Runner{Store: s.store, History: detox.NewHistory(s.env.db), Config: cfg, Log: s.env.log.WithField("component", "detox"),
		Queue: fileopQueue{s.store}, Sources: detoxSources(s.env.db, registry.NewStore(s.env.db), s.store, s.cfg.enforcer)}
	if err := r.Sources.FillEmpty(cfg.AssumeEmpty...); err != nil {
		return err
	}
	var err error
	if r.Metrics, err = detox.NewMetrics(s.metrics); err != nil {
		return err
	}
	s.detox = r
	s.mount("/api/v1/detox", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetPolicy}},
		func(rg *gin.RouterGroup) { detox.Routes(rg, s.env.db); r.DiffRoutes(rg) })
	// A policy diff only plans: a standby answers it as the writer does.
	s.registry.DescribeRoute(http.MethodPost, "/api/v1/detox/diff",
		"Plan two policies (or one under both copy-count scopes) on the current snapshot and list, per site, every replica whose decision changes, the deciding line on each side and the bytes that move; reads only, any server answers",
		"detox.DiffRequest {partition, policy_a?, policy_b?, copy_counts_a?, copy_counts_b?}")
	if !s.registry.MarkReadOnly(http.MethodPost, "/api/v1/detox/diff") {
		return fmt.Errorf("detox diff route not mounted")
	}
	names := make([]string, 0, len(cfg.Partitions))
	for n := range cfg.Partitions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := s.scheduler.Register(detoxApp(r, n)); err != nil {
			return fmt.Errorf("register detox app for %s: %w", n, err)
		}
	}
	return nil
}

// detoxApp is one partition's Detox cycle as a scheduler writer
// application. It plans on the run's snapshot and applies through the
// run's Commit (MultiCommit), so the pending-deletion write happens under
// the writer lease; recording the cycle and queueing file deletions happen
// around that one commit. A read-only run ({t} step) or detox.dry_run
// plans and records only.
func detoxApp(r *detox.Runner, partition string) scheduler.App {
	return scheduler.App{
		Name:        "detox:" + partition,
		Description: "deletes data in partition " + partition + " down to its policy's Until line",
		Writer:      true,
		MultiCommit: true,
		Plan: func(ctx context.Context, e *scheduler.Env) (*scheduler.Plan, error) {
			dry := e.DryRun || e.Commit == nil
			target := func() detox.Target {
				// The run holds the writer slot: its snapshot is current.
				return detox.Target{Snapshot: e.Snapshot, Files: r.Store,
					Commit: func(ctx context.Context, fn func(*inventory.Txn) error) (inventory.WriteResult, error) {
						return e.Commit(ctx, fn)
					}}
			}
			res, err := r.RunCycleOn(ctx, partition, e.Snapshot, target, detox.RunOptions{DryRun: dry, At: e.Now})
			if res != nil {
				e.Log.WithField("cycle", res.CycleID).WithField("deletions", len(res.Plan.Deletions)).
					WithField("bytes", res.Plan.DeletedBytes()).WithField("dry_run", res.DryRun).Info("detox cycle")
			}
			return nil, err
		},
	}
}

// enforcerRules loads the Dealer's enforcer rule files: Detox protects what
// their protect: true rules cover (replica.enforcer_protected).
func enforcerRules(paths []string) ([]*policy.EnforcerRules, error) {
	var out []*policy.EnforcerRules
	for _, p := range paths {
		er, err := policy.LoadEnforcerRules(p)
		if err != nil {
			return nil, fmt.Errorf("enforcer rules for detox: %w", err)
		}
		out = append(out, er)
	}
	return out, nil
}
