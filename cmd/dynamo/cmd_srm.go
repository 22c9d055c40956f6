package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
	"github.com/dynamo-go/dynamo/srm"
)

func init() { registerCommand(newSRMCmd) }

// newSRMCmd is `dynamo srm`: run the embedded SRM v2.2 storage element,
// from a YAML file (--config) or from the quick-start flags.
func newSRMCmd(g *globalOptions) *cobra.Command {
	var root, listen, dataListen, cert, key, caDir string
	cmd := &cobra.Command{
		Use:   "srm",
		Short: "Run the embedded SRM v2.2 storage element",
		Long: `Run the SRM v2.2 storage element.

Either --config se.yaml (see docs/srm.md), or the quick start:
  dynamo srm --root DIR --cert hostcert.pem --key hostkey.pem --ca-dir /etc/grid-security/certificates
which serves DIR as one storage area "/" to every client the CA directory
trusts. Without --db the request database is sqlite:<parent of DIR>/.<DIR name>.dynamo-srm.db
(quick start: a
hidden file next to DIR, never inside it) or sqlite:<dir of the config file>/srm.db.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg *srm.Config
			var err error
			defaultDB := ""
			switch {
			case g.configPath != "" && root == "":
				if cfg, err = yamlconf.Load(g.configPath, srm.DecodeConfig); err != nil {
					return err
				}
				defaultDB = "sqlite:" + filepath.Join(filepath.Dir(g.configPath), "srm.db")
			case root != "" && g.configPath == "":
				if cfg, err = srm.QuickStart(root, listen, dataListen, cert, key, caDir); err != nil {
					return usageError{err}
				}
				// Next to the root, never inside it: clients must not see
				// (or delete) the request database.
				r := cfg.Areas[0].Root
				defaultDB = "sqlite:" + filepath.Join(filepath.Dir(r), "."+filepath.Base(r)+".dynamo-srm.db")
			default:
				return usageError{fmt.Errorf("give either --config FILE or --root DIR (with --cert, --key, --ca-dir)")}
			}
			dsn := g.dbDSN
			if dsn == "" {
				dsn = cfg.DB
			}
			if dsn == "" {
				dsn = defaultDB
			}
			l, err := g.logger()
			if err != nil {
				return usageError{err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			d, err := db.Open(ctx, dsn)
			if err != nil {
				return err
			}
			defer d.Close()
			if _, err := d.Migrate(ctx); err != nil {
				return err
			}
			s, err := srm.New(cfg, d, logging.For(l, "srm"))
			if err != nil {
				return err
			}
			return s.Run(ctx)
		},
	}
	cmd.AddCommand(newSRMReportCmd(g))
	f := cmd.Flags()
	f.StringVar(&root, "root", "", "quick start: directory served as storage area /")
	f.StringVar(&listen, "listen", ":8444", "quick start: SRM endpoint address")
	f.StringVar(&dataListen, "data-listen", ":8443", "quick start: HTTPS data (TURL) endpoint address")
	f.StringVar(&cert, "cert", "/etc/grid-security/hostcert.pem", "quick start: host certificate (PEM)")
	f.StringVar(&key, "key", "/etc/grid-security/hostkey.pem", "quick start: host key (PEM)")
	f.StringVar(&caDir, "ca-dir", firstNonEmpty(os.Getenv("X509_CERT_DIR"), "/etc/grid-security/certificates"), "quick start: grid CA directory (env X509_CERT_DIR)")
	return cmd
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// newSRMReportCmd is `dynamo srm report`: write the storage resource report
// (WLCG SRR v4.2) of the configured SE to a file, for sites that publish a
// file rather than the live /api/v1/srr.
func newSRMReportCmd(g *globalOptions) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report --config se.yaml --out FILE",
		Short: "Write the storage resource report (WLCG SRR v4.2) of the storage element",
		Long: `Measure the storage areas of the SE configuration and write its WLCG
Storage Resource Report (schema v4.2) to FILE, atomically. A running SE
serves the same report live at https://HOST:DATA_PORT/api/v1/srr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.configPath == "" || out == "" {
				return usageError{fmt.Errorf("give --config se.yaml and --out FILE")}
			}
			cfg, err := yamlconf.Load(g.configPath, srm.DecodeConfig)
			if err != nil {
				return err
			}
			if err := srm.WriteReport(cmd.Context(), cfg, out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d storage shares)\n", out, len(cfg.Areas))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the report to")
	return cmd
}
