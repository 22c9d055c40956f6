package main

import (
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchDetoxCmd) }

// newBenchDetoxCmd measures one full Detox cycle (plan only, a dry run) on
// the inventory in --db. It never writes to the database: no migrations,
// the default partition only (so loading creates no partition rows), no
// cycle history. That makes it safe against a shared read-only benchmark
// server.
func newBenchDetoxCmd(g *globalOptions) *cobra.Command {
	var policyFile, partition, cpuProfile string
	var assume []string
	var runs int
	cmd := &cobra.Command{
		Use:   "detox --policy FILE --partition NAME",
		Short: "Load the inventory, plan Detox cycles (dry run, nothing written) and print one JSON line with the cycle time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if policyFile == "" || partition == "" {
				return usageError{errors.New("--policy and --partition are required")}
			}
			ctx := cmd.Context()
			pol, err := policy.LoadPolicy(policyFile, policy.PolicyOptions{Partition: partition})
			if err != nil {
				return usageError{err}
			}
			var src detox.Sources
			if len(assume) == 0 {
				assume = allProducers()
			}
			if err := src.FillEmpty(assume...); err != nil {
				return usageError{err}
			}
			e, err := g.open(ctx, false) // read only: never migrate the benchmark database
			if err != nil {
				return err
			}
			defer e.db.Close()
			log := e.log.WithField("component", "bench")
			start := time.Now()
			store, err := inventory.Load(ctx, e.db, e.log.WithField("component", "inventory"), nil, time.Now())
			if err != nil {
				return err
			}
			load := time.Since(start).Seconds()
			snap := store.Snapshot()
			counts := snap.Counts()
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			var times, cpu []float64
			var plan *detox.Plan
			for i := 0; i < max(runs, 1); i++ {
				runtime.GC()
				c0 := cpuSeconds()
				t0 := time.Now()
				plan, err = detox.PlanCycle(ctx, snap, pol, detox.PlanOptions{Sources: src})
				if err != nil {
					return err
				}
				times = append(times, time.Since(t0).Seconds())
				cpu = append(cpu, cpuSeconds()-c0)
				log.WithField("run", i+1).WithField("seconds", times[i]).Info("detox cycle planned")
			}
			best := times[0]
			for _, t := range times {
				best = min(best, t)
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			load1 := ""
			if b, err := os.ReadFile("/proc/loadavg"); err == nil {
				load1 = strings.TrimSpace(string(b))
			}
			return json.NewEncoder(g.stdout).Encode(map[string]any{
				"db": e.db.Name, "policy": policyFile, "partition": partition,
				"block_replicas": counts.BlockReplicas, "dataset_replicas": counts.DatasetReplicas, "sites": counts.Sites,
				"load_seconds": load, "cycle_seconds": times, "cycle_cpu_seconds": cpu, "best_cycle_seconds": best,
				"replica_decisions": len(plan.Replicas), "deletions": len(plan.Deletions), "deleted_bytes": plan.DeletedBytes(),
				"iterations": plan.Iterations, "heap_bytes": ms.HeapAlloc, "gomaxprocs": runtime.GOMAXPROCS(0), "loadavg": load1,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyFile, "policy", "", "Detox policy file")
	f.StringVar(&partition, "partition", "", "partition (must exist in the database; the benchmark loads the Default partition definition)")
	f.StringSliceVar(&assume, "assume-empty", nil, "producers to treat as knowing nothing (default: all that need more than the inventory)")
	f.IntVar(&runs, "runs", 3, "cycles to plan (the best time is reported too)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the cycles to this file")
	return cmd
}

func allProducers() []string {
	return []string{policy.ProducerLocks, policy.ProducerAccesses, policy.ProducerEnforcer, policy.ProducerTapeRequest,
		policy.ProducerUnhandledCopy, policy.ProducerProtectedSite, policy.ProducerCatalog, policy.ProducerRelease, policy.ProducerDemand}
}

// cpuSeconds is the user+system CPU time of this process so far: on a
// shared, busy machine it says more about the cycle's cost than wall time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
