package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
	"github.com/dynamo-go/dynamo/registry"
)

func init() { registerCommand(newDealerCmd) }

// dealerDeps builds the Dealer's collaborators: its history, the
// registry's copy requests, the dataset accesses the system records (for
// the popularity plugin) and the latest Detox cycle's protection figures
// (for the balancer). `dynamo serve` adds the file-operation queue.
var dealerDeps = func(e *env) (dealer.Deps, error) {
	return dealer.Deps{History: dealer.NewHistory(e.db), Requests: registryRequests{registry.NewStore(e.db)},
		Accesses: recordedAccesses{detox.DBAccesses{DB: e.db}}, Protection: detoxProtection{detox.NewHistory(e.db)}}, nil
}

// loadDealerConfig reads path, else the file named by DYNAMO_DEALER_CONFIG
// (YAML of the `dealer:` section's shape), else returns the `dealer:`
// section of the main configuration.
func loadDealerConfig(path string, main dealer.Config) (dealer.Config, error) {
	if path == "" {
		path = os.Getenv(envDealerConfig)
	}
	if path == "" {
		return main, main.Validate()
	}
	return yamlconf.Load(path, func(n *yaml.Node) (dealer.Config, error) {
		return dealer.DecodeConfigOnto(serveDealerDefaults(), n)
	})
}

func newDealerCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "dealer", Short: "Plan and make copies: requests, enforcer rules, popularity, balancing, evacuation"}
	var (
		dryRun       bool
		asJSON       bool
		seed         uint64
		cfgPath      string
		requestsPath string
		all          bool
	)
	run := &cobra.Command{
		Use:   "run",
		Short: "Run one Dealer cycle: print proposals, choices and rejections with reasons (--dry-run changes nothing but the history)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := writeRoute(ctx, g, nil, "dealer run", true)
			if err != nil {
				return err
			}
			if c != nil {
				if err := remoteOnlyFlags("dealer run", map[string]bool{"dealer-config": cfgPath != "", "requests": requestsPath != "",
					"seed": seed != 0}); err != nil {
					return err
				}
				return runRemoteApp(ctx, g, c, "dealer", nil, dryRun)
			}
			main, err := loadFileConfig(g.configPath)
			if err != nil {
				return usageError{err}
			}
			cfg, err := loadDealerConfig(cfgPath, main.Dealer)
			if err != nil {
				return usageError{err}
			}
			e, err := g.open(ctx, true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			deps, err := dealerDeps(e)
			if err != nil {
				return err
			}
			if requestsPath != "" {
				reqs, err := readRequests(requestsPath)
				if err != nil {
					return usageError{err}
				}
				deps.Requests = dealer.NewMemRequests(reqs...)
			}
			store, err := e.loadInventory(ctx)
			if err != nil {
				return err
			}
			if !dryRun {
				release, err := holdOffline(ctx, e, store)
				if err != nil {
					return err
				}
				defer release()
			}
			deps.Transfers = fileopQueue{store}
			log := e.log.WithField("component", "dealer")
			dl, err := dealer.New(cfg, deps, log)
			if err != nil {
				return usageError{err}
			}
			start := time.Now()
			plan, err := dl.Plan(ctx, store.Snapshot(), dealer.PlanOptions{Seed: seed})
			if err != nil {
				return err
			}
			planned := time.Since(start)
			res, err := dl.Apply(ctx, store, plan, dealer.ApplyOptions{DryRun: dryRun})
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(map[string]any{"plan": plan, "result": res})
			}
			printPlan(g.stdout, plan, res, all, planned)
			return nil
		},
	}
	f := run.Flags()
	f.BoolVar(&dryRun, "dry-run", false, "plan and record the cycle, change nothing")
	f.BoolVar(&asJSON, "json", false, "print the whole plan as JSON")
	f.BoolVar(&all, "all", false, "list every proposal (default: the first 200 and every rejection count)")
	f.Uint64Var(&seed, "seed", 0, "random seed (0: dealer.seed from the configuration, else a fresh one; printed)")
	f.StringVar(&cfgPath, "dealer-config", "", "dealer configuration (YAML, the shape of the `dealer:` section); env "+envDealerConfig+"; default: built-in defaults")
	f.StringVar(&requestsPath, "requests", "", "JSON file with copy requests to serve instead of the registry's (testing, demos)")
	cmd.AddCommand(run)
	cmd.AddCommand(newDealerCyclesCmd(g), newDealerShowCmd(g))
	return cmd
}

func newDealerCyclesCmd(g *globalOptions) *cobra.Command {
	var limit int
	var asJSON bool
	c := &cobra.Command{
		Use:   "cycles",
		Short: "List recorded Dealer cycles, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := g.openExisting(cmd.Context())
			if err != nil {
				return err
			}
			defer e.db.Close()
			cs, err := dealer.NewHistory(e.db).Cycles(cmd.Context(), limit, 0)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(cs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTARTED\tPARTITION\tSTATUS\tSEED\tPROPOSALS\tCOPIES\tREJECTIONS\tVOLUME")
			for _, c := range cs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", c.ID, time.Unix(0, c.StartedNS).UTC().Format(time.RFC3339),
					c.Partition, c.Status, c.Seed, c.NumProposals, c.NumCopies, c.NumRejections, bytesize.Format(c.Volume))
			}
			return tw.Flush()
		},
	}
	c.Flags().IntVar(&limit, "limit", 20, "number of cycles")
	c.Flags().BoolVar(&asJSON, "json", false, "machine-readable output")
	return c
}

func newDealerShowCmd(g *globalOptions) *cobra.Command {
	var f dealer.ProposalFilter
	var asJSON bool
	c := &cobra.Command{
		Use:   "show CYCLE",
		Short: "Show a recorded cycle's proposals and decisions (--rejected, --reason, --plugin filter)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var id int64
			if _, err := fmt.Sscan(args[0], &id); err != nil || id <= 0 {
				return usageError{fmt.Errorf("cycle %q is not a positive integer", args[0])}
			}
			e, err := g.openExisting(cmd.Context())
			if err != nil {
				return err
			}
			defer e.db.Close()
			h := dealer.NewHistory(e.db)
			cy, err := h.Cycle(cmd.Context(), id)
			if err != nil {
				return err
			}
			ps, err := h.Proposals(cmd.Context(), id, f)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(map[string]any{"cycle": cy, "proposals": ps})
			}
			fmt.Fprintf(g.stdout, "cycle %d  %s  partition %s  seed %s  snapshot %d  %d proposals, %d copies, %d rejections\n",
				cy.ID, cy.Status, cy.Partition, cy.Seed, cy.SnapshotSeq, cy.NumProposals, cy.NumCopies, cy.NumRejections)
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tPLUGIN\tITEM\tSITE\tDECISION\tDETAIL")
			for _, p := range ps {
				dec := "copy " + bytesize.Format(p.Bytes)
				if !p.Accepted {
					dec = p.Reason
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", p.Index, p.Plugin, p.Item, p.Site, dec, p.Detail)
			}
			return tw.Flush()
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.Rejected, "rejected", false, "only rejected proposals")
	fl.StringVar(&f.Reason, "reason", "", "only this rejection reason")
	fl.StringVar(&f.Plugin, "plugin", "", "only this plugin")
	fl.IntVar(&f.Limit, "limit", 1000, "number of proposals")
	fl.BoolVar(&asJSON, "json", false, "machine-readable output")
	return c
}

func readRequests(path string) ([]dealer.CopyRequest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var reqs []dealer.CopyRequest
	if err := dec.Decode(&reqs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return reqs, nil
}

func printPlan(w io.Writer, p *dealer.Plan, res *dealer.ApplyResult, all bool, took time.Duration) {
	fmt.Fprintf(w, "cycle %d  partition %s  seed %d  snapshot %d  planned in %s\n", res.CycleID, p.Partition, p.Seed, p.SnapshotSeq, took.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSITE\tQUOTA\tPROJECTED\tADDED\tAFTER\tTARGET")
	for _, t := range p.Targets {
		if t.Quota == 0 && t.Added == 0 {
			continue
		}
		status := "yes"
		if !t.Eligible {
			status = "no: " + t.Why
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f\t%s\n", t.Site, bytesize.Format(t.Quota), bytesize.Format(t.Projected), bytesize.Format(t.Added), t.Fraction, status)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d proposals, %d copies (%s), %d rejections\n", len(p.Proposals), len(p.Copies), bytesize.Format(p.Volume), len(p.Rejections()))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tPLUGIN\tITEM\tSITE\tDECISION\tDETAIL")
	for i, d := range p.Decisions {
		if !all && i >= 200 {
			fmt.Fprintf(tw, "...\t(%d more; --all or --json)\t\t\t\t\n", len(p.Decisions)-i)
			break
		}
		dec := "copy " + bytesize.Format(d.Bytes)
		if !d.Accepted {
			dec = string(d.Reason)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i, d.Plugin, d.Item, d.Site, dec, d.Detail)
	}
	tw.Flush()
	counts := p.Counts()
	reasons := make([]string, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, string(r))
	}
	sort.Strings(reasons)
	if len(reasons) > 0 {
		fmt.Fprintln(w, "\nrejections by reason:")
		for _, r := range reasons {
			fmt.Fprintf(w, "  %-24s %d\n", r, counts[dealer.Reason(r)])
		}
	}
	if len(p.RequestUpdates) > 0 {
		fmt.Fprintln(w, "\nrequest updates:")
		for _, u := range p.RequestUpdates {
			fmt.Fprintf(w, "  %d -> %s %s\n", u.ID, u.Status, u.Reason)
		}
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "skipped copy %d at apply: %s: %s\n", s.Copy, s.Reason, s.Detail)
	}
}
