package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/fileop/driver"
	_ "github.com/dynamo-go/dynamo/fileop/driver/all"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
	"github.com/dynamo-go/dynamo/inventory"
)

func init() { registerCommand(newConsistencyCmd) }

// consistencyActions gives the file-operation queue consistency runs act
// through (set in wire_consistency.go). Without it only dry runs are
// possible from the command line.
var consistencyActions func(e *env, store *inventory.Store) (consistency.Actions, error)

// loadConsistencyConfig reads the `consistency:` section from its own YAML
// file (the --consistency-config override of the main configuration's section).
func loadConsistencyConfig(path string) (consistency.Config, error) {
	c, err := yamlconf.Load(path, consistency.DecodeConfig)
	if err != nil {
		return c, usageError{err}
	}
	return c, nil
}

// dryActions reads what is in flight from the real queue and refuses to
// queue anything (the checker never queues in a dry run; this makes sure).
type dryActions struct{ real consistency.Actions }

func (d dryActions) QueueTransfers(context.Context, string, []consistency.Transfer) error {
	return errors.New("dry run: nothing may be queued")
}

func (d dryActions) InFlight(ctx context.Context, site string) (map[string]struct{}, error) {
	return d.real.InFlight(ctx, site)
}

// newConsistencyCmd is `dynamo consistency`: check sites against the inventory.
func newConsistencyCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "consistency", Short: "Check storage sites against the inventory (missing files, orphans)"}
	var site, cfgPath, workDir string
	var dryRun bool
	run := &cobra.Command{
		Use:   "run --site NAME [--dry-run]",
		Short: "List a site, diff it against the inventory and act on the differences (or, with --dry-run, list what would be done)",
		Long: `List the configured paths of a site, diff the listing against the inventory and act:
missing files confirmed by two consecutive runs make their replica incomplete and are
re-transferred, orphans older than the grace period are deleted, empty directories are
removed — unless a safety valve trips (then nothing is done and the run is an alert).
An interrupted run is resumed from its listing checkpoint by the next run of the site.
The run's counts are printed as JSON; the lists are NDJSON files under the work
directory and at /api/v1/consistency/runs/ID/lists/NAME. Credentials come from
X509_USER_PROXY / X509_CERT_DIR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if site == "" {
				return usageError{errors.New("--site is required")}
			}
			ctx := cmd.Context()
			srv, err := writeRoute(ctx, g, nil, "consistency run", true)
			if err != nil {
				return err
			}
			if srv != nil {
				if err := remoteOnlyFlags("consistency run", map[string]bool{"consistency-config": cfgPath != "", "work-dir": workDir != ""}); err != nil {
					return err
				}
				var args []string
				if dryRun {
					args = []string{"--dry-run"}
				}
				return runRemoteApp(ctx, g, srv, "consistency:"+site, args, false)
			}
			e, err := g.open(ctx, true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			var ccfg consistency.Config
			switch {
			case cfgPath != "":
				if ccfg, err = loadConsistencyConfig(cfgPath); err != nil {
					return err
				}
			case e.file.Consistency != nil:
				ccfg = *e.file.Consistency
			default:
				return usageError{errors.New("no consistency: section in the configuration (or --consistency-config FILE)")}
			}
			if workDir != "" {
				ccfg.WorkDir = workDir
			}
			st, err := e.loadInventory(ctx)
			if err != nil {
				return err
			}
			if !dryRun {
				release, err := holdOffline(ctx, e, st)
				if err != nil {
					return err
				}
				defer release()
			}
			var acts consistency.Actions
			switch {
			case dryRun:
				// A dry run queues nothing, but must see what is in flight.
				acts = consistency.NewMemActions()
				if consistencyActions != nil {
					real, err := consistencyActions(e, st)
					if err != nil {
						return err
					}
					acts = dryActions{real}
				}
			case consistencyActions != nil:
				if acts, err = consistencyActions(e, st); err != nil {
					return err
				}
			default:
				return usageError{errors.New("no file-operation queue is wired into this build: only --dry-run is possible")}
			}
			opts := driver.OptionsFromEnv()
			opts.Log = e.log.WithField("component", "driver")
			c, err := consistency.New(ccfg, e.db, st, acts, opts, nil, e.log.WithField("component", "consistency"))
			if err != nil {
				return usageError{err}
			}
			rec, err := c.Run(ctx, site, dryRun)
			if rec != nil {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if eerr := enc.Encode(struct {
					*consistency.RunRecord
					WorkDir string `json:"work_dir"`
				}{rec, rec.WorkDir}); eerr != nil && err == nil {
					err = eerr
				}
			}
			if err == nil && rec.Status == consistency.StatusAlert {
				return fmt.Errorf("safety valve: %s", rec.Message)
			}
			return err
		},
	}
	f := run.Flags()
	f.StringVar(&site, "site", "", "site to check (must be under consistency.sites)")
	f.BoolVar(&dryRun, "dry-run", false, "list what would be done, do nothing")
	f.StringVar(&cfgPath, "consistency-config", os.Getenv("DYNAMO_CONSISTENCY_CONFIG"), "YAML file of the consistency section, overriding the configuration's consistency: section; env DYNAMO_CONSISTENCY_CONFIG")
	f.StringVar(&workDir, "work-dir", "", "override consistency.work_dir")
	cmd.AddCommand(run)
	return cmd
}
