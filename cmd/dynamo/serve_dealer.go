package main

import (
	"context"
	"fmt"
	"os"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

// envDealerConfig names the dealer configuration file when
// --dealer-config is not given.
const envDealerConfig = "DYNAMO_DEALER_CONFIG"

func init() {
	serveFlag("dealer-config", "", "dealer configuration (YAML: the dealer section on its own); env "+envDealerConfig)
	registerServeComponent(serveComponent{name: "dealer", order: 60, setup: setupDealer})
}

// setupDealer builds the Dealer and registers it as the scheduler's writer
// application "dealer" (when the scheduler runs), and publishes the Dealer
// and its history as s.shared["dealer"] (*dealer.Dealer) and
// s.shared["dealer.history"] (*dealer.History), for the REST server to
// mount dealer.Routes at /api/v1/dealer.
//
// Until the main configuration has a dealer: section, the section is read
// from its own file (--dealer-config or DYNAMO_DEALER_CONFIG); without one
// the defaults apply.
func setupDealer(_ context.Context, s *serveEnv) (func(context.Context) error, error) {
	path := ""
	if p := s.flags["dealer-config"]; p != nil {
		path = *p
	}
	if path == "" {
		path = os.Getenv(envDealerConfig)
	}
	cfg, err := loadDealerConfig(path, s.env.file.Dealer)
	if err != nil {
		return nil, err
	}
	deps, err := dealerDeps(s.env)
	if err != nil {
		return nil, err
	}
	deps.Transfers = fileopQueue{s.store}
	dl, err := dealer.New(cfg, deps, s.env.log.WithField("component", "dealer"))
	if err != nil {
		return nil, err
	}
	if !dl.HasTransferQueue() {
		s.env.log.WithField("component", "dealer").Warn("no transfer queue wired: the dealer app plans and records dry runs only")
	}
	s.shared["dealer"] = dl
	s.shared["dealer.history"] = deps.History
	s.mount("/api/v1/dealer", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetPolicy}}, func(rg *gin.RouterGroup) { dealer.Routes(rg, deps.History) })
	if sch, ok := s.shared["scheduler"].(*scheduler.Scheduler); ok {
		if err := sch.Register(dealerApp(dl, s.store)); err != nil {
			return nil, fmt.Errorf("register dealer app: %w", err)
		}
	}
	return nil, nil
}

// dealerApp is the Dealer as a scheduler writer application. It commits
// through the scheduler's Commit (MultiCommit), so the inventory write
// happens under the scheduler's writer lease; recording the cycle, queueing
// transfers and updating requests happen around that one commit. A
// read-only run (a {t} sequence step, `dynamo app run --read-only`), or any
// run while no transfer queue is wired, plans and records a dry-run cycle.
func dealerApp(dl *dealer.Dealer, store *inventory.Store) scheduler.App {
	return scheduler.App{
		Name:        "dealer",
		Description: "plans copies (requests, enforcer, popularity, balancer, undertaker) and makes projected replicas and transfers",
		Writer:      true,
		MultiCommit: true,
		Plan: func(ctx context.Context, e *scheduler.Env) (*scheduler.Plan, error) {
			plan, err := dl.Plan(ctx, e.Snapshot, dealer.PlanOptions{Now: e.Now})
			if err != nil {
				return nil, err
			}
			// Without a transfer queue, copies would never be filled: plan only.
			opts := dealer.ApplyOptions{DryRun: e.DryRun || e.Commit == nil || !dl.HasTransferQueue(), At: e.Now}
			tgt := dealer.Target{Snapshot: e.Snapshot, Commit: e.Commit, Files: store.Files}
			res, err := dl.ApplyTo(ctx, tgt, plan, opts)
			if err != nil {
				return nil, err
			}
			e.Log.WithField("cycle", res.CycleID).WithField("copies", res.Copies).WithField("seed", plan.Seed).
				WithField("proposals", len(plan.Proposals)).WithField("rejections", len(plan.Rejections())).Info("dealer cycle")
			return nil, nil
		},
	}
}
