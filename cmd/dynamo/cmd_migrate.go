package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { registerCommand(newMigrateCmd) }

func newMigrateCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database schema",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := g.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer e.db.Close()
			applied, err := e.db.Migrate(cmd.Context())
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintf(g.stdout, "%s: schema up to date\n", e.db.Name)
			}
			for _, v := range applied {
				fmt.Fprintf(g.stdout, "%s: applied %s\n", e.db.Name, v)
			}
			return nil
		},
	}
}
