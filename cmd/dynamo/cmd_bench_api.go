package main

import (
	"encoding/json"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/registry/bench"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchAPICmd) }

// newBenchAPICmd is `dynamo bench api`: load the inventory (without
// migrating or writing: the database may be a shared read-only copy),
// serve it on loopback and drive the read mix at a fixed rate.
func newBenchAPICmd(g *globalOptions) *cobra.Command {
	var o bench.Options
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Serve the inventory on loopback and measure read latency at a fixed request rate; prints one JSON object",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			e, err := g.open(ctx, false)
			if err != nil {
				return err
			}
			defer e.db.Close()
			st, err := e.loadInventory(ctx)
			if err != nil {
				return err
			}
			res, err := bench.API(ctx, st, e.log.WithField("component", "registry"), o)
			if err != nil {
				return err
			}
			c := st.Snapshot().Counts()
			out := map[string]any{"db": e.db.Name, "datasets": c.Datasets, "blocks": c.Blocks, "block_replicas": c.BlockReplicas, "result": res}
			b, _ := json.Marshal(out)
			_, err = g.stdout.Write(append(b, '\n'))
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Rate, "rate", 500, "requests per second")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "measured duration")
	f.DurationVar(&o.Warmup, "warmup", 2*time.Second, "unmeasured warm-up")
	f.IntVar(&o.Workers, "workers", 64, "concurrent connections")
	f.Uint64Var(&o.Seed, "seed", 1, "request mix seed")
	f.IntVar(&o.ScanPercent, "scan-percent", 0, "percent of requests that are full-scan dataset globs (worst case)")
	return cmd
}
