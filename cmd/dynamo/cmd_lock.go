package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/registry"
)

func init() { registerCommand(newLockCmd) }

func newLockCmd(g *globalOptions) *cobra.Command {
	f := &apiFlags{g: g}
	cmd := &cobra.Command{Use: "lock", Short: "Protect data from deletion with detox locks, through the REST API"}
	addAPIFlags(cmd, f)

	var b registry.LockBody
	var expires string
	add := &cobra.Command{
		Use:   "add ITEM --expires DATE",
		Short: "Lock a dataset glob or a block (dataset#block) until DATE (RFC 3339, YYYY-MM-DD or unix seconds)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := registry.ParseTime(expires)
			if err != nil {
				return usageError{fmt.Errorf("--expires: %w", err)}
			}
			b.Item, b.Expires = args[0], registry.Time{Time: t}
			c, err := f.client()
			if err != nil {
				return err
			}
			l, err := c.AddLock(cmd.Context(), b)
			if err != nil {
				return err
			}
			return printLocks(g, f.asJSON, []registry.Lock{l})
		},
	}
	add.Flags().StringVar(&expires, "expires", "", "expiry (required)")
	add.Flags().StringSliceVar(&b.Sites, "site", nil, "only at these sites (default: everywhere)")
	add.Flags().StringSliceVar(&b.Groups, "group", nil, "only replicas owned by these groups (default: any)")
	add.Flags().StringVar(&b.Comment, "comment", "", "why")
	add.Flags().StringVar(&b.Service, "service", "", "service the lock belongs to")
	_ = add.MarkFlagRequired("expires")
	cmd.AddCommand(add)

	var ub registry.UnlockBody
	var service string
	remove := &cobra.Command{
		Use:   "remove [ID...]",
		Short: "Unlock locks by id, or your locks matching --item/--site/--group/--service",
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				id, err := strconv.ParseInt(a, 10, 64)
				if err != nil {
					return usageError{fmt.Errorf("lock id %q: want an integer", a)}
				}
				ub.LockIDs = append(ub.LockIDs, id)
			}
			if cmd.Flags().Changed("service") {
				ub.Service = &service
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ls, err := c.Unlock(cmd.Context(), ub)
			if err != nil {
				return err
			}
			return printLocks(g, f.asJSON, ls)
		},
	}
	remove.Flags().StringVar(&ub.Item, "item", "", "exact item of the locks")
	remove.Flags().StringSliceVar(&ub.Sites, "site", nil, "sites")
	remove.Flags().StringSliceVar(&ub.Groups, "group", nil, "groups")
	remove.Flags().StringVar(&service, "service", "", "service")
	remove.Flags().StringVar(&ub.User, "user", "", "another user's locks (operators)")
	cmd.AddCommand(remove)

	q := map[string]*string{}
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List active locks (--all: with history)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			v := url.Values{}
			for k, p := range q {
				if *p != "" || (k == "service" && cmd.Flags().Changed("service")) {
					v.Set(k, *p)
				}
			}
			if all {
				v.Set("all", "true")
			}
			ls, err := c.ListLocks(cmd.Context(), v)
			if err != nil {
				return err
			}
			return printLocks(g, f.asJSON, ls)
		},
	}
	for _, k := range []string{"item", "user", "service", "site", "group"} {
		q[k] = list.Flags().String(k, "", "filter by "+k)
	}
	list.Flags().BoolVar(&all, "all", false, "include unlocked and expired locks")
	cmd.AddCommand(list)

	set := &cobra.Command{
		Use:   "set SERVICE FILE.json",
		Short: "Replace your whole lock set of SERVICE with the locks in FILE ([{item, expires, sites?, groups?, comment?}]; - for stdin)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := os.Stdin
			if args[1] != "-" {
				fh, err := os.Open(args[1])
				if err != nil {
					return usageError{err}
				}
				defer fh.Close()
				in = fh
			}
			var locks []registry.LockBody
			dec := json.NewDecoder(in)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&locks); err != nil {
				return usageError{fmt.Errorf("%s: %w", args[1], err)}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ls, err := c.SetLocks(cmd.Context(), args[0], locks)
			if err != nil {
				return err
			}
			return printLocks(g, f.asJSON, ls)
		},
	}
	cmd.AddCommand(set)
	return cmd
}

func printLocks(g *globalOptions, asJSON bool, ls []registry.Lock) error {
	if asJSON {
		if ls == nil {
			ls = []registry.Lock{}
		}
		return json.NewEncoder(g.stdout).Encode(ls)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tUSER\tSERVICE\tITEM\tSITES\tGROUPS\tLOCKED\tEXPIRES\tUNLOCKED\tCOMMENT")
	for _, l := range ls {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.User, dash(l.Service), l.Item, dash(strings.Join(l.Sites, ",")),
			dash(strings.Join(l.Groups, ",")), utc(l.Locked), utc(l.Expires), utc(l.Unlocked), l.Comment)
	}
	return w.Flush()
}
