package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/console"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/registry"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchConsoleCmd) }

// newBenchConsoleCmd is `dynamo bench console`: load the inventory in --db
// (read only), serve the console on loopback as `dynamo serve` does, with
// the file-operation queue of the same database and, with --policy, a
// Detox partition for the watermarks, and time sequential page loads.
func newBenchConsoleCmd(g *globalOptions) *cobra.Command {
	var path, policyFile, partition string
	var requests, warmup int
	cmd := &cobra.Command{
		Use:   "console [--path /] [--requests N] [--policy FILE --partition NAME]",
		Short: "Serve the console over the inventory in --db and time page loads; prints one JSON object with p50/p99",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			e, err := g.open(ctx, false) // read only: never migrate the benchmark database
			if err != nil {
				return err
			}
			defer e.db.Close()
			t0 := time.Now()
			store, err := e.loadInventory(ctx)
			if err != nil {
				return err
			}
			load := time.Since(t0)
			cfg := registry.DefaultConfig()
			srv, err := registry.New(registry.Options{Config: cfg, DB: e.db, Log: e.log.WithField("component", "registry"), Inventory: store})
			if err != nil {
				return err
			}
			src := console.Sources{Inventory: store, Transfers: &fileop.API{DB: e.db}, Requests: srv.Store(), Detox: detox.NewHistory(e.db)}
			if policyFile != "" {
				dc := detox.DefaultConfig()
				dc.Partitions = map[string]detox.PartitionConfig{partition: {Policy: policyFile}}
				r := &detox.Runner{Store: store, Config: dc}
				if err := r.Sources.FillEmpty(allProducers()...); err != nil {
					return err
				}
				if _, err := r.LoadPolicy(partition, ""); err != nil {
					return usageError{err}
				}
				src.Watermarks = r
			}
			c, err := console.New(console.Options{Sources: src, Access: srv, Log: e.log.WithField("component", "console")})
			if err != nil {
				return err
			}
			srv.MountPages("/", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetRegistry}}, c.RenderError, c.Routes)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			go func() { _ = srv.Serve(ctx, ln) }()
			url := "http://" + ln.Addr().String() + path
			get := func() (time.Duration, int, error) {
				start := time.Now()
				resp, err := http.Get(url)
				if err != nil {
					return 0, 0, err
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("GET %s: %s", path, resp.Status)
				}
				return time.Since(start), int(n), err
			}
			for range warmup {
				if _, _, err := get(); err != nil {
					return err
				}
			}
			lat := make([]float64, 0, requests)
			size := 0
			for range requests {
				d, n, err := get()
				if err != nil {
					return err
				}
				lat = append(lat, float64(d)/float64(time.Millisecond))
				size = n
			}
			slices.Sort(lat)
			q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
			counts := store.Snapshot().Counts()
			out := map[string]any{"db": e.db.Name, "path": path, "sites": counts.Sites, "datasets": counts.Datasets,
				"block_replicas": counts.BlockReplicas, "load_seconds": load.Seconds(), "requests": len(lat), "page_bytes": size,
				"p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": lat[len(lat)-1], "watermarks": policyFile != ""}
			b, _ := json.Marshal(out)
			_, err = g.stdout.Write(append(b, '\n'))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "path", "/", "page to load (the federation page by default)")
	f.IntVar(&requests, "requests", 1000, "measured page loads, one after the other")
	f.IntVar(&warmup, "warmup", 20, "unmeasured page loads first")
	f.StringVar(&policyFile, "policy", "", "Detox policy whose watermarks the page shows (optional)")
	f.StringVar(&partition, "partition", "Default", "the policy's partition")
	return cmd
}
