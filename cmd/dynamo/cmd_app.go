package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/registry/client"
	"github.com/dynamo-go/dynamo/scheduler"
)

func init() { registerCommand(newAppCmd) }

// Environment of the REST clients.
const (
	appEnvServer     = "DYNAMO_SERVER"
	appEnvToken      = "DYNAMO_TOKEN"
	appDefaultServer = "http://127.0.0.1:8080"
	appAPIPath       = "/api/v1/apps"
)

// appClient calls one API group (apiPath) of a dynamo server through the
// one REST client of the CLI (registry/client: X.509 certificate, RFC 3820
// proxy, token, CA directory, the configuration's registry.client section),
// unwrapping the {"status", "data"} envelope of the component APIs.
type appClient struct {
	c    *client.Client
	base string
	err  error // building the client failed: every call returns it
}

// call sends body (if not nil) as JSON and decodes the "data" member of
// the answer into out.
func (c *appClient) call(ctx context.Context, method, path string, body, out any) error {
	if c.err != nil {
		return c.err
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	var q url.Values
	if p, raw, ok := strings.Cut(path, "?"); ok {
		var err error
		if q, err = url.ParseQuery(raw); err != nil {
			return err
		}
		path = p
	}
	if err := c.c.Do(ctx, method, c.base+path, q, body, &env); err != nil {
		return c.explain(method, path, err)
	}
	if out != nil && len(env.Data) > 0 {
		return json.Unmarshal(env.Data, out)
	}
	return nil
}

// explain adds a hint to a transport error (the server is not there).
func (c *appClient) explain(method, path string, err error) error {
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		return err
	}
	return fmt.Errorf("%s %s: %w (is dynamo serve running there? set --server or %s)", method, c.base+path, err, appEnvServer)
}

// serverClientFlags adds the API flags (--server, --token, --cert, --key,
// --proxy, --ca-dir; environment; the configuration's registry.client) to
// cmd and returns a constructor for a client of the API group at apiPath.
// Without a server named anywhere it calls the local default.
func serverClientFlags(g *globalOptions, cmd *cobra.Command, apiPath string, timeout time.Duration) func() *appClient {
	f := &apiFlags{g: g}
	addCredentialFlags(cmd, f)
	return func() *appClient {
		o, err := f.resolved()
		if err != nil {
			return &appClient{err: err}
		}
		if o.Server == "" {
			o.Server = appDefaultServer
		}
		if timeout > 0 {
			o.Timeout = timeout
		}
		c, err := client.New(o)
		if err != nil {
			return &appClient{err: usageError{err}}
		}
		return &appClient{c: c, base: apiPath}
	}
}

func newAppCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "app", Short: "List, pause, resume and run scheduled applications on a running server"}
	var asJSON bool
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "machine-readable output")
	client := serverClientFlags(g, cmd, appAPIPath, 0)
	out := func(v any) error {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}

	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List applications with their schedules, pause and last run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var l scheduler.ListResponse
			if err := client().call(cmd.Context(), "GET", "", nil, &l); err != nil {
				return err
			}
			if asJSON {
				return out(l)
			}
			role := "standby"
			if l.Leader {
				role = "writer (lease holder)"
			}
			fmt.Fprintf(g.stdout, "server %s: %s; lease holder %q until %s; inventory seq %d\n\n", l.Server, role,
				l.Lease.Holder, l.Lease.Expires.Format(time.RFC3339), l.Seq)
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "APP\tKIND\tSCHEDULES\tPAUSED\tLAST RUN\tSTATUS\tUPDATES")
			for _, a := range l.Apps {
				kind := "reader"
				if a.Writer {
					kind = "writer"
				}
				var sch []string
				for _, s := range a.Schedules {
					sch = append(sch, s.Kind+":"+s.Name)
				}
				paused, last, status, upd := "-", "-", "-", "-"
				if a.Paused != nil {
					paused = "by " + a.Paused.By
					if a.Paused.Reason != "" {
						paused += ": " + a.Paused.Reason
					}
				}
				if r := a.LastRun; r != nil {
					last, status, upd = r.Started.Local().Format("2006-01-02 15:04:05"), r.Status, strconv.Itoa(r.Updates)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, kind, appDash(strings.Join(sch, ",")), paused, last, status, upd)
			}
			return w.Flush()
		},
	})

	var f struct {
		status, since, until string
		before               int64
		limit                int
	}
	runs := &cobra.Command{
		Use:   "runs [NAME]",
		Short: "Show the run history, newest first (all applications, or NAME)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"status": f.status, "since": f.since, "until": f.until} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if f.before > 0 {
				q.Set("before", strconv.FormatInt(f.before, 10))
			}
			if f.limit > 0 {
				q.Set("limit", strconv.Itoa(f.limit))
			}
			path := "/runs"
			if len(args) == 1 {
				path = "/" + url.PathEscape(args[0]) + "/runs"
			}
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var rr scheduler.RunsResponse
			if err := client().call(cmd.Context(), "GET", path, nil, &rr); err != nil {
				return err
			}
			if asJSON {
				return out(rr)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tAPP\tTRIGGER\tSTARTED\tDURATION\tSTATUS\tUPDATES\tSERVER\tERROR")
			now := time.Now()
			for _, r := range rr.Runs {
				trig := r.Trigger
				if r.TriggerName != "" {
					trig += ":" + r.TriggerName
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.App, trig, r.Started.Local().Format("2006-01-02 15:04:05"),
					r.Duration(now).Round(time.Millisecond), r.Status, r.Updates, r.Server, appFirstLine(r.Error))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if rr.NextBefore > 0 {
				fmt.Fprintf(g.stdout, "(more: --before %d)\n", rr.NextBefore)
			}
			return nil
		},
	}
	runs.Flags().StringVar(&f.status, "status", "", "only runs with this status (ok, failed, timeout, cancelled, skipped, running, queued, abandoned)")
	runs.Flags().StringVar(&f.since, "since", "", "only runs started at or after (RFC 3339 or unix seconds)")
	runs.Flags().StringVar(&f.until, "until", "", "only runs started before (RFC 3339 or unix seconds)")
	runs.Flags().Int64Var(&f.before, "before", 0, "only runs with a smaller id (next page)")
	runs.Flags().IntVar(&f.limit, "limit", 0, "at most this many runs (default 100, max 1000)")
	cmd.AddCommand(runs)

	var reason string
	pause := &cobra.Command{
		Use:   "pause NAME",
		Short: "Pause an application: its scheduled runs are skipped (and recorded) until resume",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var l scheduler.Lock
			if err := client().call(cmd.Context(), "POST", "/"+url.PathEscape(args[0])+"/pause",
				scheduler.PauseRequest{Reason: reason, By: os.Getenv("USER")}, &l); err != nil {
				return err
			}
			if asJSON {
				return out(l)
			}
			fmt.Fprintf(g.stdout, "paused %s (by %s)\n", l.App, l.By)
			return nil
		},
	}
	pause.Flags().StringVar(&reason, "reason", "", "why (shown in app list)")
	cmd.AddCommand(pause)

	cmd.AddCommand(&cobra.Command{
		Use:   "resume NAME",
		Short: "Resume a paused application",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r struct {
				App       string `json:"app"`
				WasPaused bool   `json:"was_paused"`
			}
			if err := client().call(cmd.Context(), "POST", "/"+url.PathEscape(args[0])+"/resume", nil, &r); err != nil {
				return err
			}
			if asJSON {
				return out(r)
			}
			if !r.WasPaused {
				fmt.Fprintf(g.stdout, "%s was not paused\n", r.App)
				return nil
			}
			fmt.Fprintf(g.stdout, "resumed %s\n", r.App)
			return nil
		},
	})

	var rn scheduler.RunNowRequest
	run := &cobra.Command{
		Use:   "run NAME [-- ARGS...]",
		Short: "Run an application now (on the lease holder); --wait to wait for the result",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := rn
			req.Args = args[1:]
			req.By = os.Getenv("USER")
			var r scheduler.Run
			err := client().call(cmd.Context(), "POST", "/"+url.PathEscape(args[0])+"/run", req, &r)
			if err != nil {
				return err
			}
			if asJSON {
				return out(r)
			}
			if r.Ended == nil {
				fmt.Fprintf(g.stdout, "run %d of %s queued (see: dynamo app runs %s)\n", r.ID, r.App, r.App)
				return nil
			}
			fmt.Fprintf(g.stdout, "run %d of %s: %s in %s, %d updates applied\n", r.ID, r.App, r.Status,
				r.Duration(time.Now()).Round(time.Millisecond), r.Updates)
			if r.Error != "" {
				fmt.Fprintf(g.stdout, "error: %s\n", r.Error)
			}
			if r.Status != scheduler.StatusOK {
				return fmt.Errorf("run %d %s", r.ID, r.Status)
			}
			return nil
		},
	}
	run.Flags().StringVar(&rn.Timeout, "timeout", "", "timeout of this run (e.g. 10m; default: the app's)")
	run.Flags().BoolVar(&rn.Wait, "wait", false, "wait for the run to end and show its result")
	run.Flags().BoolVar(&rn.ReadOnly, "read-only", false, "run a writer as a dry run: compute its plan, apply nothing")
	cmd.AddCommand(run)

	cmd.AddCommand(&cobra.Command{
		Use:   "check-sequences FILE",
		Short: "Check a sequences file offline (syntax and titles; application names are checked when serve starts)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := scheduler.LoadSequences(args[0])
			if err != nil {
				return usageError{err}
			}
			if asJSON {
				return out(f)
			}
			for _, q := range f.Sequences {
				runs, restart := 0, ""
				for _, st := range q.Steps {
					if st.Kind == scheduler.StepRun {
						runs++
					}
				}
				if q.Restart {
					restart = " (restart)"
				}
				fmt.Fprintf(g.stdout, "sequence %s%s: %d steps, %d runs\n", q.Name, restart, len(q.Steps), runs)
			}
			fmt.Fprintf(g.stdout, "%s: %d definitions, %d sequences: OK\n", args[0], len(f.Defs), len(f.Sequences))
			return nil
		},
	})
	return cmd
}

func appDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func appFirstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
