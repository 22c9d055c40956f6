package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/detox"
)

func init() { registerCommand(newAccessCmd) }

func newAccessCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "access", Short: "Record dataset accesses (they drive Detox's usage rank)"}
	var a detox.Access
	var at string
	var asJSON bool
	rec := &cobra.Command{
		Use:   "record --dataset NAME --site NAME [--count N] [--at TIME]",
		Short: "Record that a dataset was read at a site",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.At = time.Now()
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return usageError{fmt.Errorf("--at %q: want RFC 3339 (2026-11-21T12:00:00Z): %w", at, err)}
				}
				a.At = t
			}
			if err := a.Validate(); err != nil {
				return usageError{err}
			}
			e, err := g.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			if err := detox.RecordAccess(cmd.Context(), e.db, a); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(a)
			}
			fmt.Fprintf(g.stdout, "recorded %d access(es) to %s at %s\n", a.Count, a.Dataset, a.Site)
			return nil
		},
	}
	f := rec.Flags()
	f.StringVar(&a.Dataset, "dataset", "", "dataset name (/A/B/C)")
	f.StringVar(&a.Site, "site", "", "site name")
	f.Int64Var(&a.Count, "count", 1, "number of accesses")
	f.StringVar(&at, "at", "", "time of the access, RFC 3339 (default: now)")
	f.BoolVar(&asJSON, "json", false, "machine-readable output")
	cmd.AddCommand(rec)
	return cmd
}
