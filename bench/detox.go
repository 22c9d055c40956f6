package bench

import (
	"context"
	"runtime"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// DetoxOptions say which policy the Detox cycles plan.
type DetoxOptions struct {
	PolicyFile string
	Partition  string
	// AssumeEmpty are the producers treated as knowing nothing (nil: all
	// that need more than the inventory).
	AssumeEmpty []string
	Runs        int    // cycles to plan
	CPUProfile  string // file for a CPU profile of the cycles ("": none)
}

// Detox plans full Detox cycles (a dry run) on d's inventory. It writes
// nothing: no migrations, the default partition only (so loading creates
// no partition rows), no cycle history; that makes it safe against a
// shared read-only benchmark server.
func Detox(ctx context.Context, d *db.DB, o DetoxOptions, log *logrus.Entry) (map[string]any, error) {
	pol, err := policy.LoadPolicy(o.PolicyFile, policy.PolicyOptions{Partition: o.Partition})
	if err != nil {
		return nil, InputError{err}
	}
	var src detox.Sources
	assume := o.AssumeEmpty
	if len(assume) == 0 {
		assume = AllProducers()
	}
	if err := src.FillEmpty(assume...); err != nil {
		return nil, InputError{err}
	}
	blog := log.WithField("component", "bench")
	start := time.Now()
	store, err := inventory.Load(ctx, d, log.WithField("component", "inventory"), nil, time.Now())
	if err != nil {
		return nil, err
	}
	load := time.Since(start).Seconds()
	snap := store.Snapshot()
	counts := snap.Counts()
	stop, err := startCPUProfile(o.CPUProfile)
	if err != nil {
		return nil, err
	}
	defer stop()
	var times, cpu []float64
	var plan *detox.Plan
	for i := 0; i < max(o.Runs, 1); i++ {
		runtime.GC()
		c0 := cpuSeconds()
		t0 := time.Now()
		plan, err = detox.PlanCycle(ctx, snap, pol, detox.PlanOptions{Sources: src})
		if err != nil {
			return nil, err
		}
		times = append(times, time.Since(t0).Seconds())
		cpu = append(cpu, cpuSeconds()-c0)
		blog.WithField("run", i+1).WithField("seconds", times[i]).Info("detox cycle planned")
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return map[string]any{
		"db": d.Name, "policy": o.PolicyFile, "partition": o.Partition,
		"block_replicas": counts.BlockReplicas, "dataset_replicas": counts.DatasetReplicas, "sites": counts.Sites,
		"load_seconds": load, "cycle_seconds": times, "cycle_cpu_seconds": cpu, "best_cycle_seconds": minOf(times),
		"replica_decisions": len(plan.Replicas), "deletions": len(plan.Deletions), "deleted_bytes": plan.DeletedBytes(),
		"iterations": plan.Iterations, "heap_bytes": ms.HeapAlloc, "gomaxprocs": runtime.GOMAXPROCS(0), "loadavg": loadAvg(),
	}, nil
}
