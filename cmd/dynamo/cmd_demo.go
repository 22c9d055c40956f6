package main

import (
	"context"
	"errors"
	"io"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/demo"
)

func init() { registerCommand(newDemoCmd) }

func newDemoCmd(g *globalOptions) *cobra.Command {
	var o demo.Options
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR] [--keep] [--listen ADDR]",
		Short: "Run the whole system on a throwaway federation: placement, verified transfers, cleaning to watermarks, delivery to a consumer",
		Long: `demo builds a temporary federation under DIR (default: a temporary directory,
removed at the end): two embedded SRM storage elements (one disk, one
tape-emulating), a file:// site, a grid PKI, a SQLite database and one
configuration file, and runs ` + "`dynamo serve`" + ` on it. Through the REST API, as
an operator would, it injects a small experiment with real files and
checksums, then shows the Dealer (run by the scheduler) placing a copy
request, the file-operation daemon transferring and verifying it, Detox
(run by the scheduler) cleaning a site over its high watermark down to its
low one, and a project delivering a dataset to a consumer. It ends with a
report checked against the inventory and the disks.
With --keep the server stays up (REST API, SEs) until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			o.Out = g.stdout
			_, err := runDemo(ctx, o, nil)
			return err
		},
	}
	cmd.Flags().StringVar(&o.Dir, "dir", "", "directory for everything the demo creates (must be empty or new; kept afterwards)")
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "keep the server running after the report, until Ctrl-C")
	cmd.Flags().Uint64Var(&o.Seed, "seed", 0, "seed for the synthetic experiment (0: random)")
	cmd.Flags().StringVar(&o.Listen, "listen", "", "REST API address (default: a free loopback port)")
	return cmd
}

// runDemo runs the demo on `dynamo serve` as the serve command builds it
// from the demo's configuration file. onServer, when set, sees the
// assembled server (tests look inside it).
func runDemo(ctx context.Context, o demo.Options, onServer func(*server)) (*demo.Report, error) {
	o.Serve = func(ctx context.Context, config string, log io.Writer, ready func()) error {
		g := &globalOptions{configPath: config, logFormat: "text", logLevel: "debug", stdout: io.Discard, stderr: log}
		return serveUntil(ctx, g, serveOptions{}, func(s *server) {
			if onServer != nil {
				onServer(s)
			}
			s.ready = ready
		})
	}
	rep, err := demo.Start(ctx, o)
	if errors.As(err, new(demo.InputError)) {
		return rep, usageError{err}
	}
	return rep, err
}
