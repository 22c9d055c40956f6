package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

func init() { registerCommand(newInventoryCmd) }

func newInventoryCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "inventory", Short: "Inspect and change the inventory"}
	var asJSON bool
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "machine-readable output")
	// With --server (or DYNAMO_SERVER), sites, datasets and replicas ask
	// the REST API instead of loading the inventory from the database.
	api := &apiFlags{g: g}
	addAPIFlags(cmd, api)

	cmd.AddCommand(&cobra.Command{
		Use:   "inject FILE.json",
		Short: "Add or update sites, groups, datasets, blocks, files and replicas from a JSON document (all or nothing)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return usageError{err}
			}
			defer f.Close()
			doc, err := inventory.DecodeInjectDoc(f)
			if err != nil {
				return usageError{fmt.Errorf("%s: %w", args[0], err)}
			}
			// A running server is the writer: the document goes to it.
			c, err := writeRoute(cmd.Context(), g, api, "inventory inject", true)
			if err != nil {
				return err
			}
			var res inventory.WriteResult
			if c != nil {
				var r registry.InjectResult
				if err := c.Do(cmd.Context(), http.MethodPost, "/api/v1/injections/sync", nil, doc, &r); err != nil {
					return fmt.Errorf("%s: nothing injected: %w", args[0], err)
				}
				res = inventory.WriteResult{Updates: r.Updates, FirstSeq: r.FirstSeq, LastSeq: r.LastSeq}
			} else {
				_, s, done, err := g.offlineWriter(cmd.Context())
				if err != nil {
					return err
				}
				defer done()
				// A campaign document takes seconds to minutes: say it is moving.
				if res, err = s.InjectWithProgress(cmd.Context(), time.Now(), doc, inventory.ProgressPrinter(g.stderr, time.Now)); err != nil {
					return fmt.Errorf("%s: nothing injected: %w", args[0], err)
				}
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(res)
			}
			fmt.Fprintf(g.stdout, "injected %s: %d updates (change log %d..%d)\n", args[0], res.Updates, res.FirstSeq, res.LastSeq)
			return nil
		},
	})

	cmd.AddCommand(&cobra.Command{
		Use:   "sites",
		Short: "List sites with quota, used and projected bytes per partition",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if api.remote() {
				return remoteSites(cmd, g, api, asJSON)
			}
			e, err := g.openExisting(cmd.Context())
			if err != nil {
				return err
			}
			defer e.db.Close()
			s, err := e.loadInventory(cmd.Context())
			if err != nil {
				return err
			}
			return printSites(g, s.Snapshot(), asJSON)
		},
	})

	cmd.AddCommand(&cobra.Command{
		Use:   "datasets [GLOB]",
		Short: "List datasets whose name matches GLOB (default: all)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pattern := "*"
			if len(args) == 1 {
				pattern = args[0]
			}
			pat, err := glob.Compile(pattern)
			if err != nil {
				return usageError{err}
			}
			if api.remote() {
				return remoteDatasets(cmd, g, api, pattern, asJSON)
			}
			e, err := g.openExisting(cmd.Context())
			if err != nil {
				return err
			}
			defer e.db.Close()
			s, err := e.loadInventory(cmd.Context())
			if err != nil {
				return err
			}
			return printDatasets(g, s.Snapshot(), pat, asJSON)
		},
	})

	cmd.AddCommand(&cobra.Command{
		Use:   "replicas DATASET",
		Short: "List the replicas of a dataset per site (needs --server or DYNAMO_SERVER)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !api.remote() {
				return usageError{fmt.Errorf("inventory replicas asks the REST API: give --server or set DYNAMO_SERVER")}
			}
			return remoteReplicas(cmd, g, api, args[0], asJSON)
		},
	})
	return cmd
}

// SiteUsage is one row of `dynamo inventory sites`.
type SiteUsage struct {
	Site      string  `json:"site"`
	Status    string  `json:"status"`
	Type      string  `json:"storage_type"`
	Partition string  `json:"partition"`
	Quota     int64   `json:"quota"`
	Used      int64   `json:"used"`
	Projected int64   `json:"projected"`
	UsedFrac  float64 `json:"used_fraction,omitempty"`
}

func siteUsages(snap *inventory.Snapshot) []SiteUsage {
	var rows []SiteUsage
	for _, site := range snap.Sites() {
		for _, p := range snap.Partitions() {
			u := snap.Usage(site.ID, p.ID)
			if u.Quota == 0 && u.Physical == 0 && u.Projected == 0 {
				continue
			}
			r := SiteUsage{Site: site.Name, Status: site.Status.String(), Type: site.StorageType.String(),
				Partition: p.Name, Quota: u.Quota, Used: u.Physical, Projected: u.Projected}
			if u.Quota > 0 {
				r.UsedFrac = float64(u.Physical) / float64(u.Quota)
			}
			rows = append(rows, r)
		}
	}
	return rows
}

func printSites(g *globalOptions, snap *inventory.Snapshot, asJSON bool) error {
	rows := siteUsages(snap)
	if asJSON {
		return json.NewEncoder(g.stdout).Encode(rows)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SITE\tSTATUS\tTYPE\tPARTITION\tQUOTA\tUSED\tPROJECTED\tUSED%")
	for _, r := range rows {
		pct := "-"
		if r.Quota > 0 {
			pct = fmt.Sprintf("%.1f", 100*r.UsedFrac)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Site, r.Status, r.Type, r.Partition,
			bytesize.Format(r.Quota), bytesize.Format(r.Used), bytesize.Format(r.Projected), pct)
	}
	return w.Flush()
}

func printDatasets(g *globalOptions, snap *inventory.Snapshot, pat *glob.Pattern, asJSON bool) error {
	var rows []inventory.Dataset
	for d := range snap.Datasets() {
		if pat.Match(d.Name) {
			rows = append(rows, d)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	if asJSON {
		return json.NewEncoder(g.stdout).Encode(rows)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DATASET\tSTATUS\tTYPE\tBLOCKS\tFILES\tSIZE\tOPEN\tREPLICAS")
	for _, d := range rows {
		var sites []string
		for r := range snap.DatasetReplicas(d.ID) {
			if s, ok := snap.Site(r.Site); ok {
				sites = append(sites, s.Name)
			}
		}
		sort.Strings(sites)
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%v\t%v\n", d.Name, d.Status, d.DataType, d.NumBlocks, d.NumFiles, bytesize.Format(d.Size), d.Open, sites)
	}
	return w.Flush()
}
