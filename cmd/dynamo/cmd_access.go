package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
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
	var impJSON bool
	imp := &cobra.Command{
		Use:   "import FILE|-",
		Short: "Record an experiment's own popularity feed: a JSON array, or one JSON object a line, of {dataset, site, count, at}",
		Long: `Record an experiment's popularity feed (dataset accesses per site) in the
access table that Detox's usage rank and the Dealer's popularity plugin read.
Every record is checked first and all are written in one transaction: a bad
record (its line named) writes nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			accs, err := readAccessFeed(cmd.InOrStdin(), args[0])
			if err != nil {
				return usageError{err}
			}
			e, err := g.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			if err := detox.RecordAccess(cmd.Context(), e.db, accs...); err != nil {
				return err
			}
			var n int64
			for _, a := range accs {
				n += a.Count
			}
			if impJSON {
				return json.NewEncoder(g.stdout).Encode(map[string]int64{"records": int64(len(accs)), "accesses": n})
			}
			fmt.Fprintf(g.stdout, "recorded %d records (%d accesses)\n", len(accs), n)
			return nil
		},
	}
	imp.Flags().BoolVar(&impJSON, "json", false, "machine-readable output")
	cmd.AddCommand(imp)
	return cmd
}

// readAccessFeed reads a feed file ("-": stdin); see
// detox.DecodeAccessFeed for the format.
func readAccessFeed(stdin io.Reader, path string) ([]detox.Access, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	accs, err := detox.DecodeAccessFeed(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return accs, nil
}
