package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

func init() { registerCommand(newDetoxCmd) }

// detoxFlags are the options shared by run and explain.
type detoxFlags struct {
	policyFile  string
	partitions  string
	partition   string
	detoxConfig string
	assumeEmpty []string
}

func (f *detoxFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.policyFile, "policy", "", "policy file (default: detox.partitions.NAME.policy from --detox-config)")
	fl.StringVar(&f.partitions, "partitions", "", "partitions file (default: detox.partitions_file, else the Default partition)")
	fl.StringVar(&f.partition, "partition", "", "partition to run")
	fl.StringVar(&f.detoxConfig, "detox-config", "", "YAML file with the detox section on its own (default: the detox: section of --config)")
	fl.StringSliceVar(&f.assumeEmpty, "assume-empty", nil, "producers to treat as knowing nothing (e.g. enforcer,unhandled_copy)")
}

// runner opens the database, loads the inventory with the partitions and
// builds a detox.Runner.
func (f *detoxFlags) runner(ctx context.Context, g *globalOptions, e *env) (*detox.Runner, error) {
	cfg := e.file.Detox // the detox: section of --config
	if f.detoxConfig != "" {
		c, err := yamlconf.Load(f.detoxConfig, detox.DecodeConfig)
		if err != nil {
			return nil, usageError{err}
		}
		cfg = c
	}
	if f.partitions == "" {
		f.partitions = cfg.PartitionsFile
	}
	var defs []inventory.PartitionDef
	if f.partitions != "" {
		ps, err := policy.LoadPartitions(f.partitions)
		if err != nil {
			return nil, usageError{err}
		}
		if defs, err = detox.PartitionDefs(ps, time.Now()); err != nil {
			return nil, usageError{err}
		}
	}
	log := e.log.WithField("component", "detox")
	start := time.Now()
	store, err := inventory.Load(ctx, e.db, e.log.WithField("component", "inventory"), defs, time.Now())
	if err != nil {
		return nil, err
	}
	log.WithField("seconds", time.Since(start).Seconds()).Info("inventory loaded")
	r := &detox.Runner{Store: store, History: detox.NewHistory(e.db), Config: cfg, Log: log,
		Sources: detox.Sources{Accesses: detox.DBAccesses{DB: e.db}, Locks: registryLocks{registry.NewStore(e.db)}}}
	if r.Sources.EnforcerRules, err = enforcerRules(e.file.Dealer.Plugins.Enforcer.RulesFiles); err != nil {
		return nil, usageError{err}
	}
	if err := r.Sources.FillEmpty(append(cfg.AssumeEmpty, f.assumeEmpty...)...); err != nil {
		return nil, usageError{err}
	}
	return r, nil
}

func newDetoxCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "detox", Short: "Check and run deletion policies"}
	cmd.AddCommand(newDetoxCheckCmd(g), newDetoxRunCmd(g), newDetoxExplainCmd(g), newDetoxDiffCmd(g))
	return cmd
}

func newDetoxCheckCmd(g *globalOptions) *cobra.Command {
	var req policy.CheckRequest
	cmd := &cobra.Command{
		Use:   "check --policy FILE [--partitions FILE] [--partition NAME] [--enforcer FILE]",
		Short: "Parse and validate a policy (and partitions file); print file:line:column messages; exit 1 if invalid",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Policy == "" && req.Partitions == "" && len(req.Enforcer) == 0 {
				return usageError{errors.New("give --policy, --partitions and/or --enforcer")}
			}
			errs := policy.Check(req)
			for _, err := range errs {
				fmt.Fprintln(g.stderr, err)
			}
			if len(errs) > 0 {
				return fmt.Errorf("%d problem(s) found", len(errs))
			}
			fmt.Fprintln(g.stdout, "ok")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Policy, "policy", "", "Detox policy file")
	f.StringVar(&req.Partitions, "partitions", "", "partitions file; the policy's partition must be defined there")
	f.StringVar(&req.Partition, "partition", "", "partition for policy files without a Partition line (campaigns)")
	f.StringSliceVar(&req.Enforcer, "enforcer", nil, "enforcer rules files (JSON) to check too")
	return cmd
}

func newDetoxRunCmd(g *globalOptions) *cobra.Command {
	var f detoxFlags
	var dryRun, asJSON, list bool
	cmd := &cobra.Command{
		Use:   "run --partition NAME [--policy FILE] [--dry-run]",
		Short: "Run one Detox cycle now; with --dry-run, print what would be deleted per site",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.partition == "" {
				return usageError{errors.New("--partition is required")}
			}
			ctx := cmd.Context()
			c, err := writeRoute(ctx, g, nil, "detox run", true)
			if err != nil {
				return err
			}
			if c != nil {
				if err := remoteOnlyFlags("detox run", map[string]bool{"policy": f.policyFile != "", "partitions": f.partitions != "",
					"detox-config": f.detoxConfig != "", "assume-empty": len(f.assumeEmpty) > 0}); err != nil {
					return err
				}
				return runRemoteApp(ctx, g, c, "detox:"+f.partition, nil, dryRun)
			}
			e, err := g.open(ctx, true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			r, err := f.runner(ctx, g, e)
			if err != nil {
				return err
			}
			if !dryRun && !r.Config.DryRun {
				release, err := holdOffline(ctx, e, r.Store)
				if err != nil {
					return err
				}
				defer release()
				r.Queue = fileopQueue{r.Store}
			}
			res, err := r.RunCycle(ctx, f.partition, detox.RunOptions{PolicyFile: f.policyFile, DryRun: dryRun})
			if res == nil {
				return err
			}
			if asJSON {
				if jerr := json.NewEncoder(g.stdout).Encode(cycleJSON(res)); jerr != nil {
					return errors.Join(err, jerr)
				}
				return err
			}
			printCycle(g, res, list)
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "plan and record the cycle, delete nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "machine-readable output")
	cmd.Flags().BoolVar(&list, "list", false, "list every replica to delete, per site")
	return cmd
}

type siteJSON struct {
	Site         string `json:"site"`
	Quota        int64  `json:"quota"`
	Before       int64  `json:"before_bytes"`
	After        int64  `json:"after_bytes"`
	Triggered    bool   `json:"triggered"`
	Released     bool   `json:"released"`
	DeletedBytes int64  `json:"deleted_bytes"`
	DeletedReps  int    `json:"deleted_replicas"`
	DeletedFiles int64  `json:"deleted_files"`
}

func cycleJSON(res *detox.CycleResult) map[string]any {
	p := res.Plan
	var sites []siteJSON
	for _, s := range p.Sites {
		sites = append(sites, siteJSON{s.Name, s.Quota, s.Before, s.After, s.Triggered, s.Released, s.Deleted, s.DeletedReps, s.Files})
	}
	out := map[string]any{"cycle": res.CycleID, "partition": p.Partition, "dry_run": res.DryRun,
		"iterations": p.Iterations, "deleted_bytes": p.DeletedBytes(), "deleted_replicas": len(p.Deletions),
		"plan_seconds": p.Elapsed.Seconds(), "sites": sites}
	if res.Applied != nil {
		out["applied_bytes"], out["applied_replicas"], out["skipped"] = res.Applied.Bytes, len(res.Applied.Deleted), len(res.Applied.Skipped)
		out["applied_last_copies"] = res.Applied.LastCopies
	}
	// Deletions of last copies (the partition's opt-in) are listed one by
	// one, always: they are what an audit of the cycle looks for.
	snap := p.Snapshot()
	last := []map[string]any{}
	for _, d := range p.Deletions {
		if d.LastCopy {
			site, _ := snap.Site(d.Site)
			last = append(last, map[string]any{"site": site.Name, "block": snap.BlockFullName(d.Block), "size": d.Size, "line": d.Line})
		}
	}
	out["last_copy_deletions"] = last
	return out
}

func printCycle(g *globalOptions, res *detox.CycleResult, list bool) {
	p := res.Plan
	mode := "applied"
	if res.DryRun {
		mode = "dry run: nothing deleted"
	}
	fmt.Fprintf(g.stdout, "cycle %d, partition %s (%s): %d block replicas, %s to delete, %d iterations, planned in %s\n",
		res.CycleID, p.Partition, mode, len(p.Deletions), bytesize.Format(p.DeletedBytes()), p.Iterations, p.Elapsed.Round(time.Millisecond))
	tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tQUOTA\tBEFORE\tAFTER\tDELETE\tREPLICAS\tFILES\tTRIGGERED\tUNTIL MET")
	for _, s := range p.Sites {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%v\t%v\n", s.Name, bytesize.Format(s.Quota), bytesize.Format(s.Before),
			bytesize.Format(s.After), bytesize.Format(s.Deleted), s.DeletedReps, s.Files, s.Triggered, s.Released)
	}
	tw.Flush()
	snap := p.Snapshot()
	for _, d := range p.Deletions {
		// LAST COPY deletions are printed even without --list.
		if !list && !d.LastCopy {
			continue
		}
		site, _ := snap.Site(d.Site)
		mark := ""
		if d.LastCopy {
			mark = "LAST COPY "
		}
		fmt.Fprintf(g.stdout, "delete %s%s %s %d bytes (%s: %s)\n", mark, site.Name, snap.BlockFullName(d.Block), d.Size, d.Reason, p.LineText(d.Line))
	}
	if res.Applied != nil {
		fmt.Fprintf(g.stdout, "applied: %d block replicas (%s) pending deletion, %d skipped at apply time\n",
			len(res.Applied.Deleted), bytesize.Format(res.Applied.Bytes), len(res.Applied.Skipped))
		if n := res.Applied.LastCopies; n > 0 {
			fmt.Fprintf(g.stdout, "applied: %d of them LAST COPY deletions (partition opt-in)\n", n)
		}
	}
}

func newDetoxExplainCmd(g *globalOptions) *cobra.Command {
	var f detoxFlags
	var dataset, site string
	var cycle int64
	cmd := &cobra.Command{
		Use:   "explain --dataset NAME --site NAME [--cycle ID | --policy FILE --partition NAME]",
		Short: "Show the decision for a dataset at a site and the policy line that made it (from the latest cycle, or a fresh dry plan with --policy)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataset == "" || site == "" {
				return usageError{errors.New("--dataset and --site are required")}
			}
			ctx := cmd.Context()
			e, err := g.openExisting(ctx)
			if err != nil {
				return err
			}
			defer e.db.Close()
			tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
			defer tw.Flush()
			if f.policyFile != "" {
				if f.partition == "" {
					return usageError{errors.New("--policy needs --partition")}
				}
				r, err := f.runner(ctx, g, e)
				if err != nil {
					return err
				}
				pol, err := r.LoadPolicy(f.partition, f.policyFile)
				if err != nil {
					return err
				}
				snap := r.Store.Snapshot()
				ds, ok1 := snap.DatasetByName(dataset)
				st, ok2 := snap.SiteByName(site)
				if !ok1 || !ok2 {
					return fmt.Errorf("no dataset %q or site %q in the inventory", dataset, site)
				}
				plan, err := detox.PlanCycle(ctx, snap, pol, r.PlanOptions(f.partition, time.Time{}))
				if err != nil {
					return err
				}
				ex := plan.Explain(ds.ID, st.ID)
				if len(ex) == 0 {
					return fmt.Errorf("%s has no replica in partition %s at %s (or the site is not a target)", dataset, f.partition, site)
				}
				fmt.Fprintln(tw, "DECISION\tBLOCKS\tSIZE\tLINE\tRULE\tREASON")
				for _, d := range ex {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", d.Decision, detox.BlockNames(snap, d.Blocks), d.Size, d.Line, plan.LineText(d.Line), d.Reason)
				}
				return nil
			}
			h := detox.NewHistory(e.db)
			var c *detox.CycleRow
			if cycle > 0 {
				c, err = h.Cycle(ctx, cycle)
			} else {
				c, err = h.Latest(ctx, f.partition)
			}
			if err != nil {
				return err
			}
			rows, err := h.Replicas(ctx, c.ID, site, dataset, 0, 0)
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				return fmt.Errorf("cycle %d (partition %s) made no decision for %s at %s", c.ID, c.Partition, dataset, site)
			}
			fmt.Fprintf(tw, "cycle %d, partition %s, policy %s\n", c.ID, c.Partition, c.PolicyFile)
			fmt.Fprintln(tw, "DECISION\tBLOCKS\tSIZE\tLINE\tRULE\tREASON")
			for _, r := range rows {
				b := r.Blocks
				if b == "" {
					b = "all"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", r.Decision, b, r.Size, r.Line, r.RuleText, r.Reason)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&dataset, "dataset", "", "dataset name")
	cmd.Flags().StringVar(&site, "site", "", "site name")
	cmd.Flags().Int64Var(&cycle, "cycle", 0, "cycle id (default: the latest of --partition, or of any)")
	return cmd
}
