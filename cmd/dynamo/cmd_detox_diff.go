package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/detox"
)

// newDetoxDiffCmd plans two policies (or one policy under two copy-count
// scopes) on the same inventory snapshot and prints what changes, so an
// operator reviews a policy change before deploying it.
func newDetoxDiffCmd(g *globalOptions) *cobra.Command {
	var f detoxFlags
	var against, scopeA, scopeB string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "diff --partition NAME [--policy FILE] [--against FILE] [--copy-counts-a SCOPE] [--copy-counts-b SCOPE]",
		Short: "Plan two policies (or one under two copy-count scopes) on one snapshot and list every replica whose decision changes",
		Long: "Side A is --policy (default: the partition's configured policy) with --copy-counts-a; side B is --against\n" +
			"(default: the same policy) with --copy-counts-b. Scopes default to the partition's copy_counts.\n" +
			"Per site: each changed replica with the line that decided it on each side, and the bytes B frees or keeps\n" +
			"compared with A. Nothing is recorded or deleted.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.partition == "" {
				return usageError{errors.New("--partition is required")}
			}
			ctx := cmd.Context()
			e, err := g.openExisting(ctx)
			if err != nil {
				return err
			}
			defer e.db.Close()
			r, err := f.runner(ctx, g, e)
			if err != nil {
				return err
			}
			sa, err := detox.ParseScope(scopeA)
			if err != nil {
				return usageError{err}
			}
			sb, err := detox.ParseScope(scopeB)
			if err != nil {
				return usageError{err}
			}
			polA, err := r.LoadPolicy(f.partition, f.policyFile)
			if err != nil {
				return err
			}
			polB := polA
			if against != "" {
				if polB, err = r.LoadPolicy(f.partition, against); err != nil {
					return err
				}
			}
			rep, err := r.Diff(ctx, r.Store.Snapshot(), detox.DiffSpec{Partition: f.partition, A: polA, B: polB, ScopeA: sa, ScopeB: sb})
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(rep)
			}
			printDiffReport(g.stdout, rep)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&against, "against", "", "policy file of side B (default: the same policy as A)")
	cmd.Flags().StringVar(&scopeA, "copy-counts-a", "", "copy-count scope of side A: partition|inventory (default: the partition's copy_counts)")
	cmd.Flags().StringVar(&scopeB, "copy-counts-b", "", "copy-count scope of side B: partition|inventory (default: the partition's copy_counts)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "machine-readable output")
	return cmd
}

// printDiffReport prints a policy diff as tables, one per site.
func printDiffReport(w io.Writer, rep *detox.DiffReport) {
	fmt.Fprintf(w, "A: %s (copy_counts %s)\nB: %s (copy_counts %s)\n", rep.A.Policy, rep.A.CopyCounts, rep.B.Policy, rep.B.CopyCounts)
	if len(rep.Sites) == 0 {
		fmt.Fprintln(w, "no decision changes")
		return
	}
	for _, sd := range rep.Sites {
		fmt.Fprintf(w, "\n%s: B frees %d bytes, keeps %d bytes that A deletes\n", sd.Site, sd.Freed, sd.Kept)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  DATASET\tBLOCKS\tSIZE\tA\tB")
		for _, c := range sd.Changes {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", c.Dataset, c.Blocks, c.Size, c.A, c.B)
		}
		tw.Flush()
	}
}
