package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/registry/client"
)

func init() { registerCommand(newRequestCmd) }

// apiFlags are the flags of commands that talk to the REST API.
type apiFlags struct {
	g      *globalOptions
	opts   client.Options
	asJSON bool
}

func addAPIFlags(cmd *cobra.Command, f *apiFlags) {
	addCredentialFlags(cmd, f)
	if pf := cmd.PersistentFlags(); pf.Lookup("json") == nil {
		pf.BoolVar(&f.asJSON, "json", false, "machine-readable output")
	}
}

// addCredentialFlags adds the server and credential flags alone, for
// commands that print JSON or not on their own terms.
func addCredentialFlags(cmd *cobra.Command, f *apiFlags) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.opts.Server, "server", "", "REST API URL, e.g. https://dynamo.example:8443; env DYNAMO_SERVER")
	pf.StringVar(&f.opts.Token, "token", "", "bearer token (service token or JWT); env DYNAMO_TOKEN")
	pf.StringVar(&f.opts.TokenFile, "token-file", "", "file holding the bearer token; env DYNAMO_TOKEN_FILE")
	pf.StringVar(&f.opts.Cert, "cert", "", "client certificate PEM; env X509_USER_CERT")
	pf.StringVar(&f.opts.Key, "key", "", "client key PEM; env X509_USER_KEY")
	pf.StringVar(&f.opts.Proxy, "proxy", "", "RFC 3820 proxy file; env X509_USER_PROXY")
	pf.StringVar(&f.opts.CADir, "ca-dir", "", "CA directory to verify the server; env X509_CERT_DIR, else /etc/grid-security/certificates, else system roots")
}

// resolved applies the precedence flags > environment > the registry.client
// section of the configuration file (when --config or DYNAMO_CONFIG names one).
func (f *apiFlags) resolved() (client.Options, error) {
	o := f.opts.FromEnv()
	if f.g == nil || f.g.configPath == "" {
		return o, nil
	}
	file, err := loadFileConfig(f.g.configPath)
	if err != nil {
		return o, usageError{err}
	}
	c := file.Registry.Client
	return o.Or(client.Options{Server: c.Server, TokenFile: c.TokenFile, Cert: c.Cert, Key: c.Key, Proxy: c.Proxy, CADir: c.CADir}), nil
}

func (f *apiFlags) client() (*client.Client, error) {
	o, err := f.resolved()
	if err != nil {
		return nil, err
	}
	c, err := client.New(o)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// remote reports whether a server was named (flag, env or config), which
// switches `inventory sites|datasets` from the local database to the API.
func (f *apiFlags) remote() bool {
	o, err := f.resolved()
	return err == nil && o.Server != ""
}

func newRequestCmd(g *globalOptions) *cobra.Command {
	f := &apiFlags{g: g}
	cmd := &cobra.Command{Use: "request", Short: "Create, inspect and cancel copy and deletion requests through the REST API"}
	addAPIFlags(cmd, f)

	var group string
	var n int
	cp := &cobra.Command{
		Use:   "copy ITEM... --site SITE[,SITE...]",
		Short: "Ask for copies of datasets or blocks (dataset#block) at sites (names or globs)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			sites, _ := cmd.Flags().GetStringSlice("site")
			b := registry.CopyRequestBody{Items: args, Sites: sites, Group: group}
			if cmd.Flags().Changed("n") {
				b.N = &n
			}
			r, err := c.CreateCopy(cmd.Context(), b)
			if err != nil {
				return err
			}
			return printRequests(g, f.asJSON, []registry.Request{r})
		},
	}
	cp.Flags().StringSlice("site", nil, "target sites or globs (repeat or comma-separate)")
	cp.Flags().StringVar(&group, "group", "", "owner group (default: the server's default group)")
	cp.Flags().IntVar(&n, "n", 1, "number of copies; 0 = at every listed site")
	cmd.AddCommand(cp)

	del := &cobra.Command{
		Use:   "delete ITEM... --site SITE[,SITE...]",
		Short: "Ask for deletion of datasets or blocks at sites",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			sites, _ := cmd.Flags().GetStringSlice("site")
			r, err := c.CreateDeletion(cmd.Context(), registry.DeletionRequestBody{Items: args, Sites: sites})
			if err != nil {
				return err
			}
			return printRequests(g, f.asJSON, []registry.Request{r})
		},
	}
	del.Flags().StringSlice("site", nil, "sites or globs (repeat or comma-separate)")
	cmd.AddCommand(del)

	var deletion bool
	kindOf := func() registry.Kind {
		if deletion {
			return registry.KindDeletion
		}
		return registry.KindCopy
	}
	parseID := func(s string) (int64, error) {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return 0, usageError{fmt.Errorf("request id %q: want a positive integer", s)}
		}
		return id, nil
	}
	// idAndClient is the start of every command on one request.
	idAndClient := func(arg string) (int64, *client.Client, error) {
		id, err := parseID(arg)
		if err != nil {
			return 0, nil, err
		}
		c, err := f.client()
		return id, c, err
	}
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show one request with its actions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, c, err := idAndClient(args[0])
			if err != nil {
				return err
			}
			r, err := c.GetRequest(cmd.Context(), kindOf(), id)
			if err != nil {
				return err
			}
			if f.asJSON {
				return json.NewEncoder(g.stdout).Encode(r)
			}
			if err := printRequests(g, false, []registry.Request{r}); err != nil {
				return err
			}
			if len(r.Actions) > 0 {
				fmt.Fprintln(g.stdout)
				w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ITEM\tSITE\tSTATUS\tUPDATED\tREASON")
				for _, a := range r.Actions {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", a.Item, a.Site, a.Status, utc(a.Updated), a.Reason)
				}
				return w.Flush()
			}
			return nil
		},
	}
	cmd.AddCommand(get)

	var statuses, users, items, sites []string
	list := &cobra.Command{
		Use:   "list",
		Short: "List requests, filtered by status, user, item or site",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string][]string{"status": statuses, "user": users, "item": items, "site": sites} {
				if len(v) > 0 {
					q.Set(k, strings.Join(v, ","))
				}
			}
			var rs []registry.Request
			enc := json.NewEncoder(g.stdout)
			err = c.ListRequests(cmd.Context(), kindOf(), q, func(r registry.Request) error {
				if f.asJSON {
					return enc.Encode(r) // NDJSON: one request per line
				}
				rs = append(rs, r)
				return nil
			})
			if err != nil || f.asJSON {
				return err
			}
			return printRequests(g, false, rs)
		},
	}
	list.Flags().StringSliceVar(&statuses, "status", nil, "new, activated, completed, rejected, cancelled")
	list.Flags().StringSliceVar(&users, "user", nil, "requesting users")
	list.Flags().StringSliceVar(&items, "item", nil, "datasets or blocks")
	list.Flags().StringSliceVar(&sites, "site", nil, "sites")
	cmd.AddCommand(list)

	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a new request (your own, or any as an operator)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, c, err := idAndClient(args[0])
			if err != nil {
				return err
			}
			r, err := c.CancelRequest(cmd.Context(), kindOf(), id)
			if err != nil {
				return err
			}
			return printRequests(g, f.asJSON, []registry.Request{r})
		},
	}
	cmd.AddCommand(cancel)
	for _, c := range []*cobra.Command{get, list, cancel} {
		c.Flags().BoolVar(&deletion, "deletion", false, "deletion requests instead of copy requests")
	}
	return cmd
}

func utc(t int64) string {
	if t == 0 {
		return "-"
	}
	return time.Unix(t, 0).UTC().Format("2006-01-02 15:04")
}

func printRequests(g *globalOptions, asJSON bool, rs []registry.Request) error {
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		for _, r := range rs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tKIND\tSTATUS\tUSER\tGROUP\tN\tCOUNT\tLAST\tITEMS\tSITES\tREASON")
	for _, r := range rs {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", r.ID, r.Kind, r.Status, r.User, dash(r.Group), r.N, r.RequestCount,
			utc(r.LastRequest), strings.Join(r.Items, ","), strings.Join(r.Sites, ","), r.Reason)
	}
	return w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
