package bench

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// DealerOptions say what the Dealer cycles plan with.
type DealerOptions struct {
	Load       func(context.Context) (*inventory.Store, error) // loads the inventory (timed; read only)
	Config     dealer.Config
	Requests   int    // synthetic open copy requests
	Runs       int    // timed cycles
	Seed       uint64 // seed of the synthetic inputs and of the cycles
	CPUProfile string // file for a CPU profile of the cycles ("": none)
}

// Dealer times full Dealer cycles (gather inputs + plan) on d's inventory
// with synthetic in-memory requests, accesses and protection figures. It
// writes nothing: no migration, no history, no apply.
func Dealer(ctx context.Context, d *db.DB, o DealerOptions, log *logrus.Entry) (map[string]any, error) {
	start := time.Now()
	store, err := o.Load(ctx)
	if err != nil {
		return nil, err
	}
	load := time.Since(start).Seconds()
	snap := store.Snapshot()
	now := time.Now()
	in := dealer.SyntheticInputs(snap, o.Requests, o.Seed, now)
	deps := dealer.Deps{Requests: dealer.NewMemRequests(in.Requests...), Accesses: dealer.MemAccesses(in.Accesses),
		Protection: dealer.MemProtection{P: in.Protection}}
	dl, err := dealer.New(o.Config, deps, log.WithField("component", "dealer"))
	if err != nil {
		return nil, InputError{err}
	}
	stop, err := startCPUProfile(o.CPUProfile)
	if err != nil {
		return nil, err
	}
	defer stop()
	var secs []float64
	var plan *dealer.Plan
	for range max(o.Runs, 1) {
		t0 := time.Now()
		if plan, err = dl.Plan(ctx, snap, dealer.PlanOptions{Seed: o.Seed, Now: now}); err != nil {
			return nil, err
		}
		secs = append(secs, time.Since(t0).Seconds())
	}
	perPlugin := map[string]int{}
	for _, p := range plan.Proposals {
		perPlugin[p.Plugin]++
	}
	c := snap.Counts()
	return map[string]any{
		"db": d.Name, "sites": c.Sites, "datasets": c.Datasets, "blocks": c.Blocks, "block_replicas": c.BlockReplicas,
		"requests": len(in.Requests), "accesses": len(in.Accesses), "seed": plan.Seed,
		"load_seconds": load, "cycle_seconds": secs, "cycle_seconds_min": minOf(secs),
		"proposals": len(plan.Proposals), "proposals_by_plugin": perPlugin, "copies": len(plan.Copies),
		"volume_bytes": plan.Volume, "rejections": len(plan.Rejections()), "reasons": plan.Counts(),
		"request_updates": len(plan.RequestUpdates), "loadavg": loadAvg(),
	}, nil
}
