package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

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
			pc := r.Config.Partitions[f.partition]
			scope := func(s string) (detox.CopyScope, error) {
				switch detox.CopyScope(s) {
				case "":
					return pc.CopyCounts, nil
				case detox.CopyScopePartition, detox.CopyScopeInventory:
					return detox.CopyScope(s), nil
				}
				return "", usageError{fmt.Errorf("copy counts scope %q: must be %q or %q", s, detox.CopyScopePartition, detox.CopyScopeInventory)}
			}
			sa, err := scope(scopeA)
			if err != nil {
				return err
			}
			sb, err := scope(scopeB)
			if err != nil {
				return err
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
			snap := r.Store.Snapshot()
			// One clock for both sides: only the policies or scopes differ.
			opts := detox.PlanOptions{Sources: r.Sources, DeletionPerIteration: r.Config.Step(f.partition),
				AllowLastCopyDeletion: pc.AllowLastCopyDeletion, At: time.Now(), Log: r.Log}
			opts.CopyCounts = sa
			planA, err := detox.PlanCycle(ctx, snap, polA, opts)
			if err != nil {
				return err
			}
			opts.CopyCounts = sb
			planB, err := detox.PlanCycle(ctx, snap, polB, opts)
			if err != nil {
				return err
			}
			diff, err := detox.DiffPlans(planA, planB)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(diffJSON(planA, planB, sa, sb, diff))
			}
			fmt.Fprintf(g.stdout, "A: %s (copy_counts %s)\nB: %s (copy_counts %s)\n", polA.File, scopeName(sa), polB.File, scopeName(sb))
			if len(diff) == 0 {
				fmt.Fprintln(g.stdout, "no decision changes")
				return nil
			}
			snapNames := planA.Snapshot()
			for _, sd := range diff {
				fmt.Fprintf(g.stdout, "\n%s: B frees %d bytes, keeps %d bytes that A deletes\n", sd.Site, sd.Freed, sd.Kept)
				tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  DATASET\tBLOCKS\tSIZE\tA\tB")
				for _, c := range sd.Changes {
					fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", c.Dataset, blockNames(snapNames, c.Blocks), c.Size, diffSide(c.A), diffSide(c.B))
				}
				tw.Flush()
			}
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

func scopeName(s detox.CopyScope) string {
	if s == "" {
		return string(detox.CopyScopePartition)
	}
	return string(s)
}

func diffSide(s detox.DiffSide) string {
	if s.Decision == 0 {
		return "not decided (outside the partition or not a target)"
	}
	return fmt.Sprintf("%s line %d %q (%s)", s.Decision, s.Line, s.Rule, s.Reason)
}

func diffJSON(a, b *detox.Plan, sa, sb detox.CopyScope, diff []detox.SiteDiff) map[string]any {
	type side struct {
		Decision string `json:"decision"`
		Line     int    `json:"line"`
		Rule     string `json:"rule"`
		Reason   string `json:"reason"`
	}
	type change struct {
		Dataset string `json:"dataset"`
		Blocks  string `json:"blocks"`
		Size    int64  `json:"size"`
		A       side   `json:"a"`
		B       side   `json:"b"`
	}
	type site struct {
		Site    string   `json:"site"`
		Freed   int64    `json:"freed_bytes"`
		Kept    int64    `json:"kept_bytes"`
		Changes []change `json:"changes"`
	}
	conv := func(s detox.DiffSide) side {
		if s.Decision == 0 {
			return side{Decision: "none"}
		}
		return side{Decision: s.Decision.String(), Line: s.Line, Rule: s.Rule, Reason: string(s.Reason)}
	}
	sites := []site{}
	for _, sd := range diff {
		out := site{Site: sd.Site, Freed: sd.Freed, Kept: sd.Kept}
		for _, c := range sd.Changes {
			out.Changes = append(out.Changes, change{Dataset: c.Dataset, Blocks: blockNames(a.Snapshot(), c.Blocks), Size: c.Size, A: conv(c.A), B: conv(c.B)})
		}
		sites = append(sites, out)
	}
	return map[string]any{"a": map[string]string{"policy": a.Policy.File, "copy_counts": scopeName(sa)},
		"b": map[string]string{"policy": b.Policy.File, "copy_counts": scopeName(sb)}, "sites": sites}
}
