package main

import (
	"context"
	"fmt"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
	"github.com/dynamo-go/dynamo/tracker"
)

// appRequests is the request tracker's scheduler application.
const appRequests = "requests"

// buildRequests registers the request tracker as the scheduler's writer
// application "requests" and, unless a cron entry of the configuration
// already runs it, schedules it every registry.request_interval (30s by
// default): a new request is acted on within a minute with no extra
// configuration. It comes after the Dealer, whose requests plugin it runs
// for copy requests waiting for a placement.
func (s *server) buildRequests(context.Context) error {
	rs := registry.NewStore(s.env.db)
	cfg := s.env.file.Registry
	tr := &tracker.Tracker{Requests: rs, Queue: s.env.db, Groups: cfg.UserGroups,
		Choke: tracker.DetoxChokePoint{Store: s.store, Locks: registryLocks{rs}},
		Log:   s.env.log.WithField("component", "tracker")}
	if err := s.scheduler.Register(requestsApp(tr, s.dealer, s.store, rs)); err != nil {
		return fmt.Errorf("register %s app: %w", appRequests, err)
	}
	if every := cfg.RequestInterval; every > 0 {
		if _, err := s.scheduler.AddCron(scheduler.CronEntry{App: appRequests, Schedule: "@every " + every.String()}); err != nil {
			return err
		}
	}
	return nil
}

// requestsApp is the request tracker as a scheduler writer. A run first
// lets the Dealer's requests plugin place copy requests that wait for a
// placement (a requests-only Dealer cycle, recorded in the Dealer's
// history like any cycle), then runs one tracker pass. Every inventory
// write goes through the scheduler's lease-fenced Commit. A read-only run
// plans and reports without writing.
func requestsApp(tr *tracker.Tracker, dl *dealer.Dealer, store *inventory.Store, rs *registry.Store) scheduler.App {
	return scheduler.App{
		Name:        appRequests,
		Description: "carries copy and deletion requests to completed, rejected or cancelled: placement, progress, approved deletions, clean-up",
		Writer:      true,
		MultiCommit: true,
		Plan: func(ctx context.Context, e *scheduler.Env) (*scheduler.Plan, error) {
			if e.DryRun || e.Commit == nil {
				in, err := tr.Gather(ctx, e.Snapshot)
				if err != nil {
					return nil, err
				}
				plan, err := tracker.Make(ctx, in, tr.Choke)
				if err != nil {
					return nil, err
				}
				e.Log.WithField("changes", len(plan.Changes)).Info("request tracker dry run")
				return nil, nil
			}
			if dl != nil && dl.HasTransferQueue() {
				waiting, err := rs.CopiesWaiting(ctx)
				if err != nil {
					return nil, err
				}
				if waiting {
					plan, err := dl.Plan(ctx, store.Snapshot(), dealer.PlanOptions{Now: e.Now, Plugins: []string{dealer.PluginRequests}})
					if err != nil {
						return nil, fmt.Errorf("placing copy requests: %w", err)
					}
					if len(plan.Proposals)+len(plan.RequestUpdates) > 0 {
						tgt := dealer.Target{Snapshot: store.Snapshot(), Commit: e.Commit, Files: store.Files}
						if _, err := dl.ApplyTo(ctx, tgt, plan, dealer.ApplyOptions{At: e.Now}); err != nil {
							return nil, fmt.Errorf("placing copy requests: %w", err)
						}
					}
				}
			}
			res, err := tr.Pass(ctx, store.Snapshot, e.Commit, e.Now)
			if err != nil {
				return nil, err
			}
			if res.Changed > 0 {
				e.Log.WithField("result", res.String()).Info("request tracker pass")
			}
			return nil, nil
		},
	}
}
