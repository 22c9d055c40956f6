package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/registry"
)

// The remote halves of `dynamo inventory sites|datasets|replicas`: the same
// tables as the local ones, from the REST API.

func remoteSites(cmd *cobra.Command, g *globalOptions, api *apiFlags, asJSON bool) error {
	c, err := api.client()
	if err != nil {
		return err
	}
	sites, err := c.Sites(cmd.Context(), "")
	if err != nil {
		return err
	}
	var rows []SiteUsage
	for _, s := range sites {
		for _, p := range s.Partitions {
			if p.Quota == 0 && p.Used == 0 && p.Projected == 0 {
				continue
			}
			r := SiteUsage{Site: s.Name, Status: s.Status, Type: s.StorageType, Partition: p.Name, Quota: p.Quota, Used: p.Used, Projected: p.Projected}
			if p.Quota > 0 {
				r.UsedFrac = float64(p.Used) / float64(p.Quota)
			}
			rows = append(rows, r)
		}
	}
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

func remoteDatasets(cmd *cobra.Command, g *globalOptions, api *apiFlags, pattern string, asJSON bool) error {
	c, err := api.client()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(g.stdout)
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(w, "DATASET\tSTATUS\tTYPE\tBLOCKS\tFILES\tSIZE\tOPEN")
	}
	err = c.Datasets(cmd.Context(), pattern, func(d registry.DatasetView) error {
		if asJSON {
			return enc.Encode(d) // NDJSON: the list may be long
		}
		_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%v\n", d.Name, d.Status, d.DataType, d.NumBlocks, d.NumFiles, bytesize.Format(d.Size), d.Open)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return nil
	}
	return w.Flush()
}

func remoteReplicas(cmd *cobra.Command, g *globalOptions, api *apiFlags, dataset string, asJSON bool) error {
	c, err := api.client()
	if err != nil {
		return err
	}
	reps, err := c.DatasetReplicas(cmd.Context(), dataset)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(g.stdout).Encode(reps)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SITE\tGROUP\tBLOCKS\tSIZE\tCOMPLETE\tGROWING")
	for _, r := range reps {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%v\t%v\n", r.Site, dash(r.Group), r.NumBlocks, bytesize.Format(r.Size), r.Complete, r.Growing)
	}
	return w.Flush()
}
