package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/bench"
	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory/synth"
	restbench "github.com/dynamo-go/dynamo/registry/bench"
)

func init() { registerCommand(newBenchCmd) }

// The `dynamo bench` commands parse their flags, open what they measure
// and print what package bench returns; the measuring is bench's.
func newBenchCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Generate synthetic inventories and measure the system on them"}
	for _, add := range []func(*globalOptions) *cobra.Command{newBenchGenerateCmd, newBenchInventoryCmd, newBenchAPICmd,
		newBenchConsistencyCmd, newBenchConsoleCmd, newBenchDealerCmd, newBenchDetoxCmd, newBenchInjectCmd, newBenchScaleCmd,
		newBenchReadScaleCmd} {
		cmd.AddCommand(add(g))
	}
	return cmd
}

// printBench prints one benchmark's figures as one JSON line; an error
// caused by what the user asked for is bad usage.
func printBench(w io.Writer, out map[string]any, err error) error {
	if err != nil {
		if bench.IsInputError(err) {
			return usageError{err}
		}
		return err
	}
	return json.NewEncoder(w).Encode(out)
}

// benchLog is the command's logger as an entry the benchmarks add their
// component fields to.
func benchLog(e *env) *logrus.Entry { return logrus.NewEntry(e.log) }

func newBenchGenerateCmd(g *globalOptions) *cobra.Command {
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
			out, err := bench.Generate(cmd.Context(), e.db, spec, benchLog(e))
			return printBench(g.stdout, out, err)
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
	return gen
}

func newBenchInventoryCmd(g *globalOptions) *cobra.Command {
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Load the inventory and print one JSON line: objects, bytes_per_object, load_seconds, raw_stream_seconds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := g.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			out, err := bench.Inventory(cmd.Context(), e.db, benchLog(e), cpuProfile)
			return printBench(g.stdout, out, err)
		},
	}
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the load to this file")
	return cmd
}

// newBenchAPICmd is `dynamo bench api`: load the inventory (without
// migrating or writing: the database may be a shared read-only copy),
// serve it on loopback and drive the read mix at a fixed rate.
func newBenchAPICmd(g *globalOptions) *cobra.Command {
	var o restbench.Options
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
			out, err := bench.API(ctx, e.db, st, benchLog(e), o)
			return printBench(g.stdout, out, err)
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

// newBenchConsistencyCmd is `dynamo bench consistency`: the diff at scale,
// the inventory side read from a real database.
func newBenchConsistencyCmd(g *globalOptions) *cobra.Command {
	var files, budgetMiB, readers int
	var dir string
	cmd := &cobra.Command{
		Use:   "consistency [--files N] [--db EMPTY-DB]",
		Short: "Measure a consistency diff of an N-file site: listing spooled, inventory side read from the database, diffed",
		Long: `Writes an inventory of N files at one site (plus a tenth as many at another) into a
database (not timed): --db names an empty one (e.g. a throwaway MariaDB), default a
new SQLite file in the work directory. Then times, from the first listing record
to the last report line, two runs:
spool:   the listing, generated directory by directory in shuffled order, is
         buffered, sorted into runs of --spool-budget MiB and written to disk;
prepare: meanwhile, as in a real run, the inventory side is made ready: the cold
         (first) run reads every file of the site out of the database, block by
         block over --readers connections, into sorted runs; the warm run, after
         a round of inventory changes (a file more in 1% of the blocks, a few
         blocks gone from the site), reads only what the change log names and
         takes the rest from the first run's cache;
diff:    both sides are k-way merged and diffed, differences written as NDJSON,
         the inventory side kept as the next run's cache.
Peak heap (sampled) and max RSS of the process are reported; planted differences
(one missing, one orphan, one wrong size per 100,000 files, and what the changes
imply) must be found exactly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			d := dir
			if d == "" {
				var err error
				if d, err = os.MkdirTemp("", "dynamo-bench-consistency-"); err != nil {
					return err
				}
				defer os.RemoveAll(d)
			}
			dsn := g.dbDSN
			if dsn == "" {
				dsn = "sqlite:" + filepath.Join(d, "inventory.db")
			}
			log, err := g.logger()
			if err != nil {
				return usageError{err}
			}
			database, err := db.Open(ctx, dsn)
			if err != nil {
				return err
			}
			defer database.Close()
			out, err := bench.Consistency(ctx, database, consistency.BenchOptions{
				Dir: d, Files: files, SpoolBudget: budgetMiB << 20, Readers: readers}, logrus.NewEntry(log))
			return printBench(g.stdout, out, err)
		},
	}
	cmd.Flags().IntVar(&files, "files", 10_000_000, "files at the site, a multiple of 10,000")
	cmd.Flags().IntVar(&budgetMiB, "spool-budget", 64, "memory budget in MiB of the listing spool and of each inventory reader")
	cmd.Flags().IntVar(&readers, "readers", 2, "parallel database readers of the inventory side")
	cmd.Flags().StringVar(&dir, "dir", "", "work directory (default: a temp dir, removed afterwards)")
	return cmd
}

// newBenchConsoleCmd is `dynamo bench console`: load the inventory in --db
// (read only), serve the console on loopback as `dynamo serve` does, with
// the file-operation queue of the same database and, with --policy, a
// Detox partition for the watermarks, and time sequential page loads.
func newBenchConsoleCmd(g *globalOptions) *cobra.Command {
	var o bench.ConsoleOptions
	cmd := &cobra.Command{
		Use:   "console [--path /] [--requests N] [--policy FILE --partition NAME]",
		Short: "Serve the console over the inventory in --db and time page loads; prints one JSON object with p50/p99",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := g.open(cmd.Context(), false) // read only: never migrate the benchmark database
			if err != nil {
				return err
			}
			defer e.db.Close()
			o.Load = e.loadInventory
			out, err := bench.Console(cmd.Context(), e.db, o, benchLog(e))
			return printBench(g.stdout, out, err)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Path, "path", "/", "page to load (the federation page by default)")
	f.IntVar(&o.Requests, "requests", 1000, "measured page loads, one after the other")
	f.IntVar(&o.Warmup, "warmup", 20, "unmeasured page loads first")
	f.StringVar(&o.PolicyFile, "policy", "", "Detox policy whose watermarks the page shows (optional)")
	f.StringVar(&o.Partition, "partition", "Default", "the policy's partition")
	return cmd
}

// newBenchDealerCmd measures a full Dealer cycle (gather inputs + plan) on
// the inventory in --db with synthetic in-memory requests, accesses and
// protection figures. It never writes to the database: no migration, no
// history, no apply.
func newBenchDealerCmd(g *globalOptions) *cobra.Command {
	var o bench.DealerOptions
	var cfgPath string
	var enforcer []string
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
			if o.Config, err = loadDealerConfig(cfgPath, main.Dealer); err != nil {
				return usageError{err}
			}
			if len(enforcer) > 0 {
				o.Config.Plugins.Enforcer.Enabled = true
				o.Config.Plugins.Enforcer.RulesFiles = append(o.Config.Plugins.Enforcer.RulesFiles, enforcer...)
			}
			e, err := g.open(ctx, false) // read-only: never migrate the measured database
			if err != nil {
				return err
			}
			defer e.db.Close()
			o.Load = e.loadInventory
			out, err := bench.Dealer(ctx, e.db, o, benchLog(e))
			return printBench(g.stdout, out, err)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Requests, "requests", 1000, "number of synthetic open copy requests")
	f.IntVar(&o.Runs, "runs", 3, "number of timed cycles")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of the synthetic inputs and of the cycles")
	f.StringVar(&cfgPath, "dealer-config", "", "dealer configuration (YAML); default: built-in defaults")
	f.StringArrayVar(&enforcer, "enforcer", nil, "enforcer rules file to enable (repeatable; partition must match)")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the timed cycles to this file")
	return cmd
}

// newBenchDetoxCmd measures one full Detox cycle (plan only, a dry run) on
// the inventory in --db; see bench.Detox for why it is safe against a
// shared read-only benchmark server.
func newBenchDetoxCmd(g *globalOptions) *cobra.Command {
	var o bench.DetoxOptions
	cmd := &cobra.Command{
		Use:   "detox --policy FILE --partition NAME",
		Short: "Load the inventory, plan Detox cycles (dry run, nothing written) and print one JSON line with the cycle time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.PolicyFile == "" || o.Partition == "" {
				return usageError{errors.New("--policy and --partition are required")}
			}
			e, err := g.open(cmd.Context(), false) // read only: never migrate the benchmark database
			if err != nil {
				return err
			}
			defer e.db.Close()
			out, err := bench.Detox(cmd.Context(), e.db, o, benchLog(e))
			return printBench(g.stdout, out, err)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.PolicyFile, "policy", "", "Detox policy file")
	f.StringVar(&o.Partition, "partition", "", "partition (must exist in the database; the benchmark loads the Default partition definition)")
	f.StringSliceVar(&o.AssumeEmpty, "assume-empty", nil, "producers to treat as knowing nothing (default: all that need more than the inventory)")
	f.IntVar(&o.Runs, "runs", 3, "cycles to plan (the best time is reported too)")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the cycles to this file")
	return cmd
}

// newBenchInjectCmd injects synthetic campaign documents of growing size
// through the same path as `dynamo inventory inject` (JSON decode, then
// one write) and reports the growth exponent of the cost.
func newBenchInjectCmd(g *globalOptions) *cobra.Command {
	var o bench.InjectOptions
	cmd := &cobra.Command{
		Use:   "inject",
		Short: "Inject synthetic campaign documents of growing size into --db and print updates/s and the growth exponent",
		Long: `Inject synthetic campaign documents of growing size into the database
(--db; it may already hold an inventory: the documents use fresh names) and
print one JSON object: per size the updates, wall and CPU seconds, and the
log-log slope of cost against updates (1 is linear). Each document is a
campaign of new datasets with blocks, files and replicas (about 15 updates
per dataset). It writes to the database: use a scratch one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if len(o.Sizes) == 0 || o.Sites < 3 {
				return usageError{fmt.Errorf("--datasets needs at least one size and --sites at least 3")}
			}
			e, err := g.open(ctx, true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			store, err := e.loadInventory(ctx)
			if err != nil {
				return err
			}
			o.Progress = g.stderr
			out, err := bench.Inject(ctx, e.db, store, o, benchLog(e))
			return printBench(g.stdout, out, err)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&o.Sizes, "datasets", []int{70, 700, 7000, 70000}, "documents to inject, in datasets (about 15 updates each)")
	f.IntVar(&o.Sites, "sites", 51, "sites each document defines")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the injections to this file")
	return cmd
}

func newBenchScaleCmd(g *globalOptions) *cobra.Command {
	o := bench.DefaultScaleOptions()
	var sizes, steps []string
	var jsonOut string
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Measure memory and cycle costs on synthetic inventories of 1x, 3x, 10x CMS built in memory; prints a table and JSON",
		Long: `Builds synthetic inventories in memory (1x CMS = 100 sites, 300,000 datasets,
3 M blocks, 10 M block replicas; --sizes picks multiples) and measures for each:
resident memory and bytes per object; the load time from a database generated
with the same spec (--load-db SIZE=DSN; make one with
"dynamo bench generate --sites 100*SIZE --datasets 300000*SIZE"); a Detox full
cycle with --policy (plan only); a Dealer cycle with --requests synthetic open
requests; a consistency diff of a site with as many files as the largest site
holds (its own scratch SQLite database, written untimed); REST read latency at
--rate req/s while Detox cycles run. Nothing is written to --db.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range sizes {
				f, err := strconv.ParseFloat(strings.TrimSuffix(s, "x"), 64)
				if err != nil || f <= 0 {
					return usageError{fmt.Errorf("--sizes: %q is not a positive multiple of CMS", s)}
				}
				o.Sizes = append(o.Sizes, f)
			}
			for _, s := range steps {
				if !slices.Contains(bench.ScaleSteps, s) {
					return usageError{fmt.Errorf("--steps: unknown step %q (have %s)", s, strings.Join(bench.ScaleSteps, ", "))}
				}
			}
			o.Steps = steps
			main, err := loadFileConfig(g.configPath)
			if err != nil {
				return usageError{err}
			}
			if o.Dealer, err = loadDealerConfig("", main.Dealer); err != nil {
				return usageError{err}
			}
			o.Detox = main.Detox // plan_workers: the rest step plans as serve does
			log, err := g.logger()
			if err != nil {
				return usageError{err}
			}
			rep, err := bench.Scale(cmd.Context(), o, logrus.NewEntry(log))
			if err != nil {
				return printBench(nil, nil, err)
			}
			bench.PrintScaleTable(g.stdout, rep)
			return writeScaleJSON(g.stdout, jsonOut, rep)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&sizes, "sizes", []string{"1", "3", "10"}, "inventory sizes as multiples of CMS")
	f.StringSliceVar(&steps, "steps", bench.ScaleSteps, "steps to run per size")
	f.StringToStringVar(&o.LoadDB, "load-db", nil, "SIZE=DSN: time loading this database (generated with the same spec) at that size")
	f.StringVar(&o.PolicyFile, "policy", o.PolicyFile, "Detox policy file")
	f.StringVar(&o.Partition, "partition", o.Partition, "Detox partition")
	f.IntVar(&o.Requests, "requests", o.Requests, "open requests of the Dealer cycle")
	f.IntVar(&o.Rate, "rate", o.Rate, "REST requests per second during the cycle")
	f.DurationVar(&o.RESTDuration, "rest-duration", o.RESTDuration, "measured REST time")
	f.IntVar(&o.ConsistencyTo, "consistency-max-files", 0, "cap the consistency diff's files (0: the largest site's)")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the inventory and of the synthetic inputs")
	f.StringVar(&o.WorkDir, "dir", "", "work directory (default: a temp dir, removed afterwards)")
	f.StringVar(&jsonOut, "json", "", "also write the report as JSON to this file (- for stdout)")
	f.StringVar(&o.RESTCPUProfile, "rest-cpuprofile", "", "write a CPU profile of the rest step to this file (.SIZEx appended with several sizes)")
	f.StringVar(&o.RESTTrace, "rest-trace", "", "write a runtime execution trace of the rest step to this file (.SIZEx appended with several sizes)")
	return cmd
}

// writeScaleJSON writes the scale report as indented JSON to path ("-":
// stdout, "": nowhere).
func writeScaleJSON(stdout io.Writer, path string, rep any) error {
	if path == "" {
		return nil
	}
	w := stdout
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(rep)
}
