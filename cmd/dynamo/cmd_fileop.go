package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"text/tabwriter"
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
	// Listings print a table; --json (-o json) prints the rows as one
	// JSON array.
	var asJSON bool
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "machine-readable output: one JSON array")
	printJSON := func(c *cobra.Command, v any) error {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	table := func(header string, rows func(w io.Writer)) {
		tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		rows(tw)
		tw.Flush()
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
			if asJSON {
				return printJSON(c, nonNil(rows))
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
		Use: "held", Short: "List held subscriptions with why they are held", Args: cobra.NoArgs,
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
			if asJSON {
				return printJSON(c, nonNil(rows))
			}
			table("ID\tOP\tLFN\tSITE\tSOURCE\tHOLD\tTRIES\tMESSAGE", func(w io.Writer) {
				for _, r := range rows {
					fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t%s\t%d\t%s\n", r.ID, r.Op, r.LFN, r.SiteID, r.SourceSite, r.HoldReason, r.Tries, r.Message)
				}
			})
			return nil
		},
	}
	held.Flags().IntVar(&limit, "limit", 1000, "at most this many")
	cmd.AddCommand(held)
	var all bool
	var reason, comment string
	release := &cobra.Command{
		Use: "release [ID...]", Short: "Move held subscriptions back to the queue (IDs, or --all [--hold-reason R]), with --comment saying why",
		RunE: func(c *cobra.Command, args []string) error {
			ids, err := parseIDs(args)
			if err != nil {
				return usageError{err}
			}
			// A hold reason that is not one would match nothing, silently.
			if _, err := fileop.ParseHoldReason(reason); err != nil {
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
				body := map[string]any{"ids": ids, "hold_reason": reason, "comment": comment}
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
			n, err := fileop.ReleaseWith(c.Context(), e.db, time.Now(), fileop.ReleaseOptions{IDs: ids, HoldReason: fileop.HoldReason(reason),
				Comment: comment, By: "cli"})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "released %d\n", n)
			return nil
		},
	}
	release.Flags().BoolVar(&all, "all", false, "release every held subscription")
	release.Flags().StringVar(&reason, "hold-reason", "", "only those held for this reason (no_source, all_failed, site_unavailable, irrecoverable)")
	release.Flags().StringVar(&reason, "reason", "", "same as --hold-reason (a note goes in --comment)")
	release.Flags().StringVar(&comment, "comment", "", "why they are released, recorded as their message")
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
		Use: "history", Short: "Recorded attempts, newest first", Args: cobra.NoArgs,
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
			if asJSON {
				return printJSON(c, nonNil(rows))
			}
			table("ID\tSUB\tOP\tLFN\tSITE\tSOURCE\tOUTCOME\tBYTES\tFINISHED\tMESSAGE", func(w io.Writer) {
				for _, r := range rows {
					fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t%s\n", r.ID, r.Subscription, r.Op, r.LFN, r.Site, r.SourceSite,
						r.Outcome, r.Bytes, time.Unix(r.Finished, 0).UTC().Format(time.RFC3339), r.Message)
				}
			})
			return nil
		},
	}
	hist.Flags().Int64Var(&sub, "subscription", 0, "only this subscription")
	hist.Flags().IntVar(&limit, "limit", 100, "at most this many")
	cmd.AddCommand(hist)
	cmd.AddCommand(newFileopReplicaCmds(g, func(c *cobra.Command, rows []fileop.ReplicaHealth) error {
		if asJSON {
			return printJSON(c, nonNil(rows))
		}
		table("BLOCK\tSITE\tSUSPICIOUS\tMISMATCHES\tLAST LFN\tREASON", func(w io.Writer) {
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%t\t%d\t%s\t%s\n", r.Block, r.Site, r.Suspicious, r.Mismatches, r.LastLFN, r.Reason)
			}
		})
		return nil
	})...)
	return cmd
}

// newFileopReplicaCmds are the commands that change replica flags or
// retry from a named source. Flags are inventory writes, so they go to
// the server (the writer-lease holder) over REST, never to the database.
func newFileopReplicaCmds(g *globalOptions, printReplicas func(*cobra.Command, []fileop.ReplicaHealth) error) []*cobra.Command {
	replicas := &cobra.Command{
		Use: "replicas", Short: "Replicas with checksum mismatches as a transfer source, or flagged suspicious", Args: cobra.NoArgs,
	}
	listClient := serverClientFlags(g, replicas, "/api/v1/fileop", 30*time.Second)
	replicas.RunE = func(c *cobra.Command, _ []string) error {
		var rows []fileop.ReplicaHealth
		if err := listClient().call(c.Context(), "GET", "/replicas", nil, &rows); err != nil {
			return err
		}
		return printReplicas(c, rows)
	}
	var reason string
	markBad := &cobra.Command{
		Use: "mark-bad DATASET#BLOCK SITE --reason WHY", Short: "Declare a replica bad: not counted as a copy, never a transfer source", Args: cobra.ExactArgs(2),
	}
	markClient := serverClientFlags(g, markBad, "/api/v1/fileop", 30*time.Second)
	markBad.Flags().StringVar(&reason, "reason", "", "why (recorded with the flag; required)")
	markBad.RunE = func(c *cobra.Command, args []string) error {
		if reason == "" {
			return usageError{fmt.Errorf("--reason is required")}
		}
		return markReplica(c, g, markClient(), args[0], args[1], true, reason)
	}
	clearBad := &cobra.Command{
		Use: "clear-bad DATASET#BLOCK SITE", Short: "Clear a replica's suspicious flag and its mismatch count", Args: cobra.ExactArgs(2),
	}
	clearClient := serverClientFlags(g, clearBad, "/api/v1/fileop", 30*time.Second)
	clearBad.RunE = func(c *cobra.Command, args []string) error {
		return markReplica(c, g, clearClient(), args[0], args[1], false, "")
	}
	var source string
	retry := &cobra.Command{
		Use: "retry ID --source SITE", Short: "Retry a held transfer reading from the named source only", Args: cobra.ExactArgs(1),
	}
	retryClient := serverClientFlags(g, retry, "/api/v1/fileop", 30*time.Second)
	retry.Flags().StringVar(&source, "source", "", "site to read the file from (required)")
	retry.RunE = func(c *cobra.Command, args []string) error {
		id, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || source == "" {
			return usageError{fmt.Errorf("give a subscription id and --source SITE")}
		}
		if err := retryClient().call(c.Context(), "POST", "/retry-from", map[string]any{"id": id, "source": source}, nil); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "subscription %d queued again, reading from %s\n", id, source)
		return nil
	}
	return []*cobra.Command{replicas, markBad, clearBad, retry}
}

func markReplica(c *cobra.Command, g *globalOptions, cl *appClient, block, site string, bad bool, reason string) error {
	body := map[string]any{"block": block, "site": site, "bad": bad, "reason": reason}
	if err := cl.call(c.Context(), "POST", "/replicas/mark", body, nil); err != nil {
		return err
	}
	if bad {
		fmt.Fprintf(g.stdout, "%s at %s declared bad\n", block, site)
	} else {
		fmt.Fprintf(g.stdout, "%s at %s cleared\n", block, site)
	}
	return nil
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

// nonNil makes an empty listing print [] rather than null.
func nonNil[T any](rows []T) []T {
	if rows == nil {
		return []T{}
	}
	return rows
}
