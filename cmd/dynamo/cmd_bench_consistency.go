package main

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/internal/db"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchConsistencyCmd) }

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
			if _, err := database.Migrate(ctx); err != nil {
				return err
			}
			res, err := consistency.Bench(ctx, database, consistency.BenchOptions{
				Dir: d, Files: files, SpoolBudget: budgetMiB << 20, Readers: readers,
				Progress: func(s string) { log.WithField("component", "bench").Info(s) },
			})
			if err != nil {
				return err
			}
			run := func(r consistency.BenchRun) map[string]any {
				return map[string]any{"total_seconds": r.Total.Seconds(), "spool_seconds": r.Spool.Seconds(),
					"prepare_seconds": r.Prepare.Seconds(), "diff_seconds": r.Diff.Seconds(), "listing_runs": r.Runs,
					"inventory_runs": r.InventoryRuns, "inventory_side": r.Prepared, "counts": r.Counts}
			}
			return json.NewEncoder(g.stdout).Encode(map[string]any{
				"db": database.Name, "files": res.Files, "setup_seconds": res.Setup.Seconds(),
				"cold": run(res.Cold), "warm": run(res.Warm),
				"peak_heap_mib": res.PeakHeap >> 20, "max_rss_mib": res.MaxRSS >> 20,
			})
		},
	}
	cmd.Flags().IntVar(&files, "files", 10_000_000, "files at the site, a multiple of 10,000")
	cmd.Flags().IntVar(&budgetMiB, "spool-budget", 64, "memory budget in MiB of the listing spool and of each inventory reader")
	cmd.Flags().IntVar(&readers, "readers", 2, "parallel database readers of the inventory side")
	cmd.Flags().StringVar(&dir, "dir", "", "work directory (default: a temp dir, removed afterwards)")
	return cmd
}
