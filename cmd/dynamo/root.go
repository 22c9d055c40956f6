package main

import (
	"errors"
	"io"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/internal/logging"
)

// globalOptions are the flags every subcommand shares.
type globalOptions struct {
	configPath string
	dbDSN      string
	logFormat  string
	logLevel   string
	stdout     io.Writer
	stderr     io.Writer
}

// logger builds the process logger from the global flags.
func (g *globalOptions) logger() (*logrus.Logger, error) {
	return logging.New(g.stderr, g.logFormat, g.logLevel)
}

// usageError marks errors caused by bad command-line input (exit status 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globalOptions{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "dynamo",
		Short:         "Data-management orchestrator for storage grids, with an embedded SRM storage element",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", os.Getenv("DYNAMO_CONFIG"), "configuration file (YAML); env DYNAMO_CONFIG")
	pf.StringVar(&g.dbDSN, "db", os.Getenv("DYNAMO_DB"), "database: sqlite:PATH or mysql://USER:PASS@HOST:PORT/DB; env DYNAMO_DB (default from config, else sqlite:./var/dynamo.db)")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")

	for _, add := range subcommands {
		root.AddCommand(add(g))
	}
	addOutputFlags(root)
	return root
}

// subcommands is filled by the init functions of the cmd_<noun>.go files, so
// that adding a noun touches only its own file.
var subcommands []func(*globalOptions) *cobra.Command

func registerCommand(f func(*globalOptions) *cobra.Command) { subcommands = append(subcommands, f) }
