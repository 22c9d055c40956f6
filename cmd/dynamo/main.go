// Command dynamo is the one binary of dynamo-go: the orchestrator server, the
// embedded SRM storage element, and the operator commands. This file only
// wires subcommands; each lives in a cmd_<noun>.go file.
package main

import (
	"fmt"
	"os"
)

func main() {
	root := newRootCmd(os.Stdout, os.Stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "dynamo:", err)
		os.Exit(exitCode(err))
	}
}
