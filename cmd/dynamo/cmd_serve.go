package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/inventory"
)

//go:embed sample_inventory.json
var sampleInventory []byte

func init() { registerCommand(newServeCmd) }

func newServeCmd(g *globalOptions) *cobra.Command {
	var sample bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the orchestrator: migrate, load the inventory, and serve until SIGINT/SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			e, err := g.open(ctx, true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			log := e.log.WithField("component", "serve")
			s, err := e.loadInventory(ctx)
			if err != nil {
				return err
			}
			if (sample || e.cfg.Serve.SampleInventory) && len(s.Snapshot().Sites()) == 0 {
				if err := injectSample(ctx, s); err != nil {
					return err
				}
				log.Info("injected the built-in sample inventory")
			}
			for _, u := range siteUsages(s.Snapshot()) {
				log.WithField("site", u.Site).WithField("partition", u.Partition).
					WithField("quota", humanBytes(u.Quota)).WithField("used", humanBytes(u.Used)).
					WithField("projected", humanBytes(u.Projected)).Info("site partition")
			}
			log.WithField("db", e.db.Name).WithField("seq", s.Seq()).Info("ready; stop with Ctrl-C or SIGTERM")
			<-ctx.Done()
			log.Info("shutting down")
			return nil
		},
	}
	cmd.Flags().BoolVar(&sample, "sample", false, "inject a small built-in inventory if the database has no sites")
	return cmd
}

func injectSample(ctx context.Context, s *inventory.Store) error {
	doc, err := inventory.DecodeInjectDoc(bytes.NewReader(sampleInventory))
	if err != nil {
		return fmt.Errorf("built-in sample: %w", err)
	}
	_, err = s.Inject(ctx, time.Now(), doc)
	return err
}
