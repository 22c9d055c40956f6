package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
)

func init() { registerCommand(newBenchCmd) }

func newBenchCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Generate synthetic inventories and measure the system on them"}

	spec := synth.CMS()
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write a realistic synthetic inventory into an empty database (deterministic with --seed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := writeRoute(cmd.Context(), g, nil, "bench generate", false); err != nil {
				return err
			}
			e, err := g.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			log := e.log.WithField("component", "bench")
			start := time.Now()
			st, err := synth.Generate(cmd.Context(), e.db, spec, func(s synth.Stats) {
				log.WithField("datasets", s.Datasets).WithField("blocks", s.Blocks).WithField("block_replicas", s.BlockReplicas).
					WithField("elapsed", time.Since(start).Round(time.Second).String()).Info("generating")
			})
			if err != nil {
				return err
			}
			return json.NewEncoder(g.stdout).Encode(map[string]any{
				"db": e.db.Name, "sites": st.Sites, "groups": st.Groups, "datasets": st.Datasets, "blocks": st.Blocks,
				"dataset_replicas": st.DatasetReplicas, "block_replicas": st.BlockReplicas, "bytes": st.Bytes,
				"seconds": time.Since(start).Seconds(),
			})
		},
	}
	f := gen.Flags()
	f.IntVar(&spec.Sites, "sites", spec.Sites, "number of sites (about a tenth are tape)")
	f.IntVar(&spec.Datasets, "datasets", spec.Datasets, "number of datasets")
	f.Float64Var(&spec.BlocksPerDataset, "blocks-per-dataset", spec.BlocksPerDataset, "mean blocks per dataset")
	f.Float64Var(&spec.ReplicasPerBlock, "replicas-per-block", spec.ReplicasPerBlock, "mean replicas per block (1-5)")
	f.Float64Var(&spec.IncompleteFrac, "incomplete", spec.IncompleteFrac, "fraction of block replicas still in transfer")
	f.Float64Var(&spec.TargetOccupancy, "occupancy", spec.TargetOccupancy, "disk quota occupancy to aim for")
	f.Uint64Var(&spec.Seed, "seed", spec.Seed, "random seed")
	cmd.AddCommand(gen)

	var cpuProfile string
	benchInv := &cobra.Command{
		Use:   "inventory",
		Short: "Load the inventory and print one JSON line: objects, bytes_per_object, load_seconds, raw_stream_seconds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			e, err := g.open(ctx, true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			// Stream once untimed so both timed runs find the same warm
			// database caches, then time the raw stream and the load.
			if err := inventory.StreamOnly(ctx, e.db); err != nil {
				return err
			}
			start := time.Now()
			if err := inventory.StreamOnly(ctx, e.db); err != nil {
				return err
			}
			raw := time.Since(start).Seconds()

			runtime.GC()
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
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
			start = time.Now()
			s, err := inventory.Load(ctx, e.db, e.log.WithField("component", "inventory"), nil, time.Now())
			if err != nil {
				return err
			}
			load := time.Since(start).Seconds()
			runtime.GC()
			runtime.GC()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			c := s.Snapshot().Counts()
			objects := c.Sites + c.Datasets + c.Blocks + c.BlockReplicas
			heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			out := map[string]any{
				"db": e.db.Name, "objects": objects, "sites": c.Sites, "datasets": c.Datasets, "blocks": c.Blocks,
				"dataset_replicas": c.DatasetReplicas, "block_replicas": c.BlockReplicas,
				"heap_bytes": heap, "bytes_per_object": float64(heap) / float64(max(objects, 1)),
				"load_seconds": load, "raw_stream_seconds": raw, "load_over_raw": load / raw,
			}
			runtime.KeepAlive(s)
			b, _ := json.Marshal(out)
			fmt.Fprintln(g.stdout, string(b))
			return nil
		},
	}
	benchInv.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the load to this file")
	cmd.AddCommand(benchInv)
	for _, add := range benchSubcommands {
		cmd.AddCommand(add(g))
	}
	return cmd
}

// benchSubcommands lets components add `dynamo bench <name>` from their own
// cmd_bench_<name>.go files (init functions append to it).
var benchSubcommands []func(*globalOptions) *cobra.Command
