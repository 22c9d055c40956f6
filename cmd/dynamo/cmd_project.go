package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/projects"
)

func init() { registerCommand(newProjectCmd) }

// projectAPIPath is where the lead mounts projects.Routes.
const projectAPIPath = "/api/v1/projects"

func newProjectCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "project", Short: "Start projects, consume their files and end them on a running server (SAM-style delivery)"}
	var asJSON bool
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "machine-readable output")
	client := serverClientFlags(g, cmd, projectAPIPath, 5*time.Minute)
	printSummary := func(s projects.Summary) error {
		if asJSON {
			return jsonOut(g.stdout, s)
		}
		fmt.Fprintf(g.stdout, "project %s: %s, dataset %s at %s, %d files, lookahead %d\n", s.Name, s.State, s.Dataset, s.Site, s.Files, s.LookAhead)
		w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "STATE\tFILES")
		for _, st := range []projects.FileState{projects.FilePending, projects.FileStaging, projects.FileReady, projects.FileDelivered,
			projects.FileConsumed, projects.FileSkipped, projects.FileLost, projects.FileFailed, projects.FileVanished} {
			if n := s.Counts[st]; n > 0 {
				fmt.Fprintf(w, "%s\t%d\n", st, n)
			}
		}
		w.Flush()
		if len(s.Consumers) > 0 {
			w = tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "\nCPID\tNAME\tSTATE\tDELIVERED\tCONSUMED\tLAST SEEN")
			for _, c := range s.Consumers {
				fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t%s\n", c.CPID, c.Name, c.State, c.Delivered, c.Consumed, c.LastSeen.Format(time.RFC3339))
			}
			w.Flush()
		}
		if s.State == projects.ProjectEnded {
			fmt.Fprintf(g.stdout, "\nrecovery list (%d files not consumed):\n", len(s.Recovery))
			for _, l := range s.Recovery {
				fmt.Fprintln(g.stdout, l)
			}
		}
		return nil
	}

	var site, dataset, filesFrom string
	var files []string
	var lookahead int
	start := &cobra.Command{
		Use:   "start NAME --site SITE (--dataset DS | --files LFN,... | --files-from FILE)",
		Short: "Start a project on a dataset (its files now) or an explicit list of LFNs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if filesFrom != "" {
				l, err := readLines(filesFrom)
				if err != nil {
					return usageError{err}
				}
				files = append(files, l...)
			}
			var s projects.Summary
			err := client().call(cmd.Context(), "POST", "", projects.StartRequest{Name: args[0], Site: site, Dataset: dataset, Files: files, LookAhead: lookahead}, &s)
			if err != nil {
				return err
			}
			return printSummary(s)
		},
	}
	start.Flags().StringVar(&site, "site", "", "consumption site (required)")
	start.Flags().StringVar(&dataset, "dataset", "", "dataset name")
	start.Flags().StringSliceVar(&files, "files", nil, "LFNs (instead of --dataset)")
	start.Flags().StringVar(&filesFrom, "files-from", "", "file with one LFN per line (instead of --dataset)")
	start.Flags().IntVar(&lookahead, "lookahead", 0, "files kept staged ahead (default: the server's)")
	_ = start.MarkFlagRequired("site")
	cmd.AddCommand(start)

	var procName string
	process := &cobra.Command{
		Use:   "process PROJECT [--name NAME]",
		Short: "Establish a consumer process; prints its id (cpid)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r struct {
				CPID int64 `json:"cpid"`
			}
			if err := client().call(cmd.Context(), "POST", "/"+args[0]+"/processes", map[string]string{"name": procName}, &r); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, r.CPID)
			return nil
		},
	}
	process.Flags().StringVar(&procName, "name", "", "process description")
	cmd.AddCommand(process)

	var wait time.Duration
	next := &cobra.Command{
		Use:   "next PROJECT CPID [--wait DURATION]",
		Short: "Get the next file: prints URL and LFN (tab-separated); nothing when no files are left",
		Long: "Asks for the next file of consumer CPID. Prints \"URL<TAB>LFN\". While no file is ready the\n" +
			"server answers 202: with --wait the command retries after the server's Retry-After until\n" +
			"the wait is over, otherwise it fails saying when to retry. When no files are left it prints\n" +
			"nothing and exits 0.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := strconv.ParseInt(args[1], 10, 64); err != nil {
				return usageError{fmt.Errorf("CPID %q is not a number", args[1])}
			}
			deadline := time.Now().Add(wait)
			for {
				code, retry, body, err := nextFile(cmd.Context(), client(), args[0], args[1])
				if err != nil {
					return err
				}
				switch code {
				case http.StatusOK:
					lines := strings.SplitN(strings.TrimSpace(body), "\n", 2)
					lfn := ""
					if len(lines) == 2 {
						lfn = lines[1]
					}
					fmt.Fprintf(g.stdout, "%s\t%s\n", lines[0], lfn)
					return nil
				case http.StatusNoContent:
					fmt.Fprintln(g.stderr, "no more files")
					return nil
				}
				if time.Now().Add(retry).After(deadline) {
					return fmt.Errorf("no file ready yet; retry after %v", retry)
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(retry):
				}
			}
		},
	}
	next.Flags().DurationVar(&wait, "wait", 0, "keep asking while files are being staged, up to this long")
	cmd.AddCommand(next)

	var skipped bool
	report := &cobra.Command{
		Use:   "report PROJECT CPID LFN [--skipped]",
		Short: "Report a delivered file consumed (default) or skipped; releases its pin",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			st := projects.StatusConsumed
			if skipped {
				st = projects.StatusSkipped
			}
			return client().call(cmd.Context(), "POST", "/"+args[0]+"/processes/"+args[1]+"/files", map[string]string{"filename": args[2], "status": st}, nil)
		},
	}
	report.Flags().BoolVar(&skipped, "skipped", false, "the file was skipped, not consumed")
	cmd.AddCommand(report)

	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the projects the server runs or has ended, by name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var l []projects.Summary
			if err := client().call(cmd.Context(), "GET", "", nil, &l); err != nil {
				return err
			}
			if l == nil {
				l = []projects.Summary{}
			}
			if asJSON {
				return jsonOut(g.stdout, l)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PROJECT\tSTATE\tOWNER\tDATASET\tSITE\tFILES\tCONSUMED\tPROCESSES")
			for _, s := range l {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", s.Name, s.State, s.Owner, s.Dataset, s.Site, s.Files,
					s.Counts[projects.FileConsumed], len(s.Consumers))
			}
			return w.Flush()
		},
	})

	cmd.AddCommand(&cobra.Command{
		Use:   "status PROJECT",
		Short: "Show a project's summary (files by state, processes, recovery list once ended)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var s projects.Summary
			if err := client().call(cmd.Context(), "GET", "/"+args[0], nil, &s); err != nil {
				return err
			}
			return printSummary(s)
		},
	})

	var endProc string
	var bad bool
	end := &cobra.Command{
		Use:   "end PROJECT [--process CPID [--bad]]",
		Short: "End a project (prints the summary and recovery list), or only one consumer process",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if endProc != "" {
				st := projects.ConsumerCompleted
				if bad {
					st = projects.ConsumerBad
				}
				return client().call(cmd.Context(), "POST", "/"+args[0]+"/processes/"+endProc+"/end", map[string]string{"status": st}, nil)
			}
			var s projects.Summary
			if err := client().call(cmd.Context(), "POST", "/"+args[0]+"/end", nil, &s); err != nil {
				return err
			}
			return printSummary(s)
		},
	}
	end.Flags().StringVar(&endProc, "process", "", "end only this consumer process")
	end.Flags().BoolVar(&bad, "bad", false, "with --process: the process failed")
	cmd.AddCommand(end)
	return cmd
}

// nextFile POSTs getNextFile; it returns the status, the Retry-After of a
// 202 and the body of a 200.
func nextFile(ctx context.Context, c *appClient, project, cpid string) (int, time.Duration, string, error) {
	if c.err != nil {
		return 0, 0, "", c.err
	}
	path := "/" + project + "/processes/" + cpid + "/next"
	resp, err := c.c.Send(ctx, http.MethodPost, c.base+path, nil, nil)
	if err != nil {
		return 0, 0, "", c.explain(http.MethodPost, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNoContent:
		return resp.StatusCode, 0, string(b), nil
	case http.StatusAccepted:
		secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || secs < 1 {
			secs = 10
		}
		return resp.StatusCode, time.Duration(secs) * time.Second, "", nil
	}
	return 0, 0, "", fmt.Errorf("next file: unexpected HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, errors.New(path + ": no LFNs")
	}
	return out, nil
}

func jsonOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
