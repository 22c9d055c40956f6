package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// outputFlag is -o/--output table|json: the same switch as the command's
// --json flag, whose value it sets, so every command that can print JSON
// takes -o json the same way.
type outputFlag struct {
	json pflag.Value
	val  string
}

func (o *outputFlag) String() string {
	if o.val == "" {
		return "table"
	}
	return o.val
}

func (o *outputFlag) Set(s string) error {
	switch s {
	case "table":
		o.val = s
		return o.json.Set("false")
	case "json":
		o.val = s
		return o.json.Set("true")
	}
	return fmt.Errorf("%q: want table or json", s)
}

func (o *outputFlag) Type() string { return "format" }

// addOutputFlags gives -o to every command of the tree that has a --json
// flag (its own or inherited) and no -o yet. Called once the tree is built.
func addOutputFlags(cmd *cobra.Command) {
	if f := cmd.PersistentFlags().Lookup("json"); f != nil && cmd.PersistentFlags().Lookup("output") == nil {
		cmd.PersistentFlags().VarP(&outputFlag{json: f.Value}, "output", "o", "output format: table or json (same as --json)")
	} else if f := cmd.LocalNonPersistentFlags().Lookup("json"); f != nil && cmd.Flags().Lookup("output") == nil {
		cmd.Flags().VarP(&outputFlag{json: f.Value}, "output", "o", "output format: table or json (same as --json)")
	}
	for _, c := range cmd.Commands() {
		addOutputFlags(c)
	}
}
