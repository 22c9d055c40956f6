package main

import (
	"context"
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

// envDealerConfig names the dealer configuration file when
// --dealer-config is not given.
const envDealerConfig = "DYNAMO_DEALER_CONFIG"

// serveDealerDefaults are the Dealer's defaults in this build: CMS's
// production values, every plugin with its input wired (dealerDeps): the
// popularity plugin reads the accesses the system records, the balancer
// the latest Detox cycle's protection.
func serveDealerDefaults() dealer.Config { return dealer.DefaultConfig() }

// dealerInputs checks that every enabled plugin of cfg has its input in
// deps: an enabled plugin without one would plan nothing, forever, and
// nobody would know why.
func dealerInputs(cfg dealer.Config, deps dealer.Deps) error {
	p := cfg.Plugins
	switch {
	case p.Requests.Enabled && deps.Requests == nil:
		return notWired("dealer.plugins.requests", "no copy request source")
	case p.Popularity.Enabled && deps.Accesses == nil:
		return notWired("dealer.plugins.popularity", "no dataset access source (set enabled: false until one is configured)")
	case p.Balancer.Enabled && deps.Protection == nil:
		return notWired("dealer.plugins.balancer", "no protection source (set enabled: false until one is configured)")
	}
	return nil
}

// buildDealer builds the Dealer, registers it as the scheduler's writer
// application "dealer" and mounts dealer.Routes at /api/v1/dealer.
//
// The section is the main configuration's dealer: or a file of its own
// (--dealer-config or DYNAMO_DEALER_CONFIG).
func (s *server) buildDealer(context.Context) error {
	deps, err := dealerDeps(s.env)
	if err != nil {
		return err
	}
	deps.Transfers = fileopQueue{s.store}
	if deps.Metrics, err = dealer.NewMetrics(s.metrics); err != nil {
		return err
	}
	if err := dealerInputs(s.cfg.dealer, deps); err != nil {
		return err
	}
	log := s.env.log.WithField("component", "dealer")
	dl, err := dealer.New(s.cfg.dealer, deps, log)
	if err != nil {
		return err
	}
	s.dealer = dl
	s.mount("/api/v1/dealer", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetPolicy}},
		func(rg *gin.RouterGroup) { dealer.Routes(rg, deps.History) })
	if err := s.scheduler.Register(dealerApp(dl, s.store)); err != nil {
		return fmt.Errorf("register dealer app: %w", err)
	}
	return nil
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
