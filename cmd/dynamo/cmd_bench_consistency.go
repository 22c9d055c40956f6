package main

import (
	"encoding/json"
	"os"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/consistency"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchConsistencyCmd) }

// newBenchConsistencyCmd is `dynamo bench consistency`: the diff at scale.
func init() { benchSubcommands = append(benchSubcommands, newBenchConsistencyCmd) }

func newBenchConsistencyCmd(g *globalOptions) *cobra.Command {
	var files, budgetMiB int
	var dir string
	cmd := &cobra.Command{
		Use:   "consistency [--files N]",
		Short: "Measure the consistency diff: spool a synthetic N-file listing with planted differences and diff it against an inventory dump",
		Long: `Writes a sorted inventory dump of N files (not timed), then times two phases:
spool: the listing, generated directory by directory in shuffled order, is buffered,
       sorted into runs of --spool-budget MiB and written to disk;
diff:  the runs are k-way merged, the inventory dump is streamed from disk, the two
       are diffed and the differences written as NDJSON.
Peak heap (sampled) and max RSS of the process are reported; planted differences
(one missing, one orphan, one wrong size per 100,000 files) must be found exactly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := dir
			if d == "" {
				var err error
				if d, err = os.MkdirTemp("", "dynamo-bench-consistency-"); err != nil {
					return err
				}
				defer os.RemoveAll(d)
			}
			res, err := consistency.Bench(d, files, budgetMiB<<20)
			if err != nil {
				return err
			}
			return json.NewEncoder(g.stdout).Encode(map[string]any{
				"files": res.Files, "spool_seconds": res.Spool.Seconds(), "runs": res.Runs,
				"diff_seconds": res.Diff.Seconds(), "total_seconds": (res.Spool + res.Diff).Seconds(),
				"peak_heap_mib": res.PeakHeap >> 20, "max_rss_mib": res.MaxRSS >> 20, "counts": res.Counts,
			})
		},
	}
	cmd.Flags().IntVar(&files, "files", 10_000_000, "files in the listing and the inventory")
	cmd.Flags().IntVar(&budgetMiB, "spool-budget", 64, "spool memory budget in MiB")
	cmd.Flags().StringVar(&dir, "dir", "", "work directory (default: a temp dir, removed afterwards)")
	return cmd
}
