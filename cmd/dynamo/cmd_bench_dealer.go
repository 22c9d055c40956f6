package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/dealer"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchDealerCmd) }

// newBenchDealerCmd measures a full Dealer cycle (gather inputs + plan) on
// the inventory in --db with synthetic in-memory requests, accesses and
// protection figures. It never writes to the database: no migration, no
// history, no apply.
func newBenchDealerCmd(g *globalOptions) *cobra.Command {
	var (
		nReq       int
		runs       int
		seed       uint64
		cfgPath    string
		enforcer   []string
		cpuProfile string
	)
	cmd := &cobra.Command{
		Use:   "dealer",
		Short: "Time full Dealer cycles (dry run, read-only) with N synthetic open copy requests; prints one JSON line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			main, err := loadFileConfig(g.configPath)
			if err != nil {
				return usageError{err}
			}
			cfg, err := loadDealerConfig(cfgPath, main.Dealer)
			if err != nil {
				return usageError{err}
			}
			if len(enforcer) > 0 {
				cfg.Plugins.Enforcer.Enabled = true
				cfg.Plugins.Enforcer.RulesFiles = append(cfg.Plugins.Enforcer.RulesFiles, enforcer...)
			}
			e, err := g.open(ctx, false) // read-only: never migrate the measured database
			if err != nil {
				return err
			}
			defer e.db.Close()
			start := time.Now()
			store, err := e.loadInventory(ctx)
			if err != nil {
				return err
			}
			load := time.Since(start).Seconds()
			snap := store.Snapshot()
			now := time.Now()
			in := dealer.SyntheticInputs(snap, nReq, seed, now)
			deps := dealer.Deps{Requests: dealer.NewMemRequests(in.Requests...), Accesses: dealer.MemAccesses(in.Accesses),
				Protection: dealer.MemProtection{P: in.Protection}}
			dl, err := dealer.New(cfg, deps, e.log.WithField("component", "dealer"))
			if err != nil {
				return usageError{err}
			}
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
			var secs []float64
			var plan *dealer.Plan
			for range max(runs, 1) {
				t0 := time.Now()
				if plan, err = dl.Plan(ctx, snap, dealer.PlanOptions{Seed: seed, Now: now}); err != nil {
					return err
				}
				secs = append(secs, time.Since(t0).Seconds())
			}
			perPlugin := map[string]int{}
			for _, p := range plan.Proposals {
				perPlugin[p.Plugin]++
			}
			c := snap.Counts()
			loadavg, _ := os.ReadFile("/proc/loadavg")
			b, _ := json.Marshal(map[string]any{
				"db": e.db.Name, "sites": c.Sites, "datasets": c.Datasets, "blocks": c.Blocks, "block_replicas": c.BlockReplicas,
				"requests": len(in.Requests), "accesses": len(in.Accesses), "seed": plan.Seed,
				"load_seconds": load, "cycle_seconds": secs, "cycle_seconds_min": minOf(secs),
				"proposals": len(plan.Proposals), "proposals_by_plugin": perPlugin, "copies": len(plan.Copies),
				"volume_bytes": plan.Volume, "rejections": len(plan.Rejections()), "reasons": plan.Counts(),
				"request_updates": len(plan.RequestUpdates), "loadavg": strings.TrimSpace(string(loadavg)),
			})
			fmt.Fprintln(g.stdout, string(b))
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&nReq, "requests", 1000, "number of synthetic open copy requests")
	f.IntVar(&runs, "runs", 3, "number of timed cycles")
	f.Uint64Var(&seed, "seed", 1, "seed of the synthetic inputs and of the cycles")
	f.StringVar(&cfgPath, "dealer-config", "", "dealer configuration (YAML); default: built-in defaults")
	f.StringArrayVar(&enforcer, "enforcer", nil, "enforcer rules file to enable (repeatable; partition must match)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the timed cycles to this file")
	return cmd
}

func minOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs[1:] {
		m = min(m, x)
	}
	return m
}
