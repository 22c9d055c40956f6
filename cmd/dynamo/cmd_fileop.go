package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/fileop"
)

func init() { registerCommand(newFileopCmd) }

// newFileopCmd: `dynamo fileop status|held|release|cancel|history`. These
// read and change the queue tables directly in the database given by
// --db / the config (the same database `dynamo serve` uses); the daemon
// picks released rows up on its next pass. Every change is a
// compare-and-set, so running them next to a live daemon is safe.
func newFileopCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "fileop", Short: "Inspect and steer the file-operation queue"}
	printJSON := func(c *cobra.Command, v any) error {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	cmd.AddCommand(&cobra.Command{
		Use: "status", Short: "Count subscriptions by operation, state and hold reason", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := g.openExisting(c.Context())
			if err != nil {
				return err
			}
			defer e.db.Close()
			rows, err := fileop.Status(c.Context(), e.db)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%-9s %-10s %-17s %10s %15s\n", "OP", "STATE", "HOLD", "COUNT", "BYTES")
			for _, r := range rows {
				fmt.Fprintf(g.stdout, "%-9s %-10s %-17s %10d %15d\n", r.Op, r.State, r.HoldReason, r.Count, r.Bytes)
			}
			return nil
		},
	})
	var limit int
	held := &cobra.Command{
		Use: "held", Short: "List held subscriptions (JSON)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := g.openExisting(c.Context())
			if err != nil {
				return err
			}
			defer e.db.Close()
			rows, err := fileop.Held(c.Context(), e.db, limit)
			if err != nil {
				return err
			}
			return printJSON(c, rows)
		},
	}
	held.Flags().IntVar(&limit, "limit", 1000, "at most this many")
	cmd.AddCommand(held)
	var all bool
	var reason string
	release := &cobra.Command{
		Use: "release [ID...]", Short: "Move held subscriptions back to the queue (IDs, or --all [--reason R])",
		RunE: func(c *cobra.Command, args []string) error {
			ids, err := parseIDs(args)
			if err != nil {
				return usageError{err}
			}
			if len(ids) == 0 && !all {
				return usageError{fmt.Errorf("give subscription ids or --all")}
			}
			// The queue belongs to the writer's daemon: a running one gets it.
			srv, err := writeRoute(c.Context(), g, nil, "fileop release", true)
			if err != nil {
				return err
			}
			if srv != nil {
				var out struct {
					Data struct {
						Released int64 `json:"released"`
					} `json:"data"`
				}
				body := map[string]any{"ids": ids, "reason": reason}
				if err := srv.Do(c.Context(), http.MethodPost, "/api/v1/fileop/release", nil, body, &out); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "released %d\n", out.Data.Released)
				return nil
			}
			e, err := g.open(c.Context(), true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			n, err := fileop.Release(c.Context(), e.db, time.Now(), ids, fileop.HoldReason(reason))
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "released %d\n", n)
			return nil
		},
	}
	release.Flags().BoolVar(&all, "all", false, "release every held subscription")
	release.Flags().StringVar(&reason, "reason", "", "only those held for this reason (no_source, all_failed, site_unavailable, irrecoverable)")
	cmd.AddCommand(release)
	cmd.AddCommand(&cobra.Command{
		Use: "cancel ID...", Short: "Cancel pending subscriptions", Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ids, err := parseIDs(args)
			if err != nil {
				return usageError{err}
			}
			srv, err := writeRoute(c.Context(), g, nil, "fileop cancel", true)
			if err != nil {
				return err
			}
			if srv != nil {
				var out struct {
					Data struct {
						Cancelled int64 `json:"cancelled"`
					} `json:"data"`
				}
				if err := srv.Do(c.Context(), http.MethodPost, "/api/v1/fileop/cancel", nil, map[string]any{"ids": ids}, &out); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "cancelled %d\n", out.Data.Cancelled)
				return nil
			}
			e, err := g.open(c.Context(), true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			n, err := fileop.Cancel(c.Context(), e.db, time.Now(), ids)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "cancelled %d\n", n)
			return nil
		},
	})
	var sub int64
	hist := &cobra.Command{
		Use: "history", Short: "Recorded attempts, newest first (JSON)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := g.openExisting(c.Context())
			if err != nil {
				return err
			}
			defer e.db.Close()
			rows, err := fileop.History(c.Context(), e.db, sub, limit)
			if err != nil {
				return err
			}
			return printJSON(c, rows)
		},
	}
	hist.Flags().Int64Var(&sub, "subscription", 0, "only this subscription")
	hist.Flags().IntVar(&limit, "limit", 100, "at most this many")
	cmd.AddCommand(hist)
	return cmd
}

func parseIDs(args []string) ([]int64, error) {
	var ids []int64
	for _, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%q is not a subscription id", a)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
