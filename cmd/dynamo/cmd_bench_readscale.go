package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/bench"
)

// newBenchReadScaleCmd is `dynamo bench readscale`: N `dynamo serve`
// processes (this binary) on the --db database, reads over all of them.
func newBenchReadScaleCmd(g *globalOptions) *cobra.Command {
	o := bench.ReadScaleOptions{Servers: []int{1, 2, 3}, Datasets: 3000, Duration: 10 * time.Second, Workers: 32,
		LagSamples: 5, Heartbeat: 3 * time.Second, Seed: 1}
	var servers []string
	var jsonOut string
	cmd := &cobra.Command{
		Use:   "readscale",
		Short: "Start 1, 2, 3 dynamo serve processes on one database and measure read throughput, standby lag and write refusal",
		Long: `Starts "dynamo serve" processes of this binary on the --db database (MariaDB:
every server must reach it), one more for each count in --servers; the first
holds the writer lease, the others are standbys replaying the change log every
--replay-interval. For each count it measures the read mix at full speed (--workers
closed-loop readers spread evenly over the servers) for --duration; meanwhile
it adds --lag-samples sites through the holder and times how long each
standby takes to serve them (replication lag); and it sends a write to every
standby, which must answer 503 not_writer naming the holder. An empty
database gets a synthetic inventory of --datasets datasets first.

Every row reports each server's CPU (from /proc) and the servers' CPU per
read. Without --cpu-quota the servers and the generator share the host's
cores, so on a host with fewer cores than servers throughput cannot grow.
--cpu-quota C caps each server at C cores in a cgroup of its own (needs
root; GOMAXPROCS defaults to C rounded up): each server has the same budget
however many run, as on hosts of their own, and a row whose servers were
throttled in most periods ("bound") measures the servers' capacity.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Servers = o.Servers[:0]
			for _, s := range servers {
				n, err := strconv.Atoi(s)
				if err != nil || n < 1 || n > 16 {
					return usageError{fmt.Errorf("--servers: %q is not a server count from 1 to 16", s)}
				}
				o.Servers = append(o.Servers, n)
			}
			e, err := g.configure()
			if err != nil {
				return err
			}
			if e.cfg.Database == "" {
				return usageError{errors.New("--db is required: the database every server uses")}
			}
			if sqlitePath(e.cfg.Database) != "" {
				e.log.Warn("readscale on SQLite: the servers share one file; MariaDB is what several servers run on")
			}
			o.DSN = e.cfg.Database
			if o.Binary, err = os.Executable(); err != nil {
				return err
			}
			if o.Dir == "" {
				if o.Dir, err = os.MkdirTemp("", "dynamo-bench-readscale-"); err != nil {
					return err
				}
				defer os.RemoveAll(o.Dir)
			}
			o.Log = benchLog(e).WithField("component", "bench")
			rep, err := bench.ReadScale(cmd.Context(), o)
			if err != nil {
				return printBench(nil, nil, err)
			}
			bench.PrintReadScaleTable(g.stdout, rep)
			return writeScaleJSON(g.stdout, jsonOut, rep)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&servers, "servers", []string{"1", "2", "3"}, "server counts to measure")
	f.IntVar(&o.Datasets, "datasets", o.Datasets, "datasets of the synthetic inventory generated into an empty database")
	f.DurationVar(&o.Duration, "duration", o.Duration, "measured read time per server count")
	f.IntVar(&o.Workers, "workers", o.Workers, "concurrent readers, spread evenly over the servers")
	f.IntVar(&o.LagSamples, "lag-samples", o.LagSamples, "writes on the holder timed until each standby serves them")
	f.DurationVar(&o.Heartbeat, "heartbeat", o.Heartbeat, "the servers' scheduler heartbeat (lease renewal and takeover attempts)")
	f.DurationVar(&o.ReplayInterval, "replay-interval", 0, "how often a standby replays the change log (scheduler.replay_interval; 0: the servers' default, 250ms or the heartbeat if shorter)")
	f.Float64Var(&o.CPUQuota, "cpu-quota", 0, "cap each server at this many cores in a cgroup of its own (e.g. 0.25; needs root; 0: no cap)")
	f.IntVar(&o.ServerProcs, "server-procs", 0, "each server's GOMAXPROCS (0: inherited, or the quota rounded up)")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the inventory and of the request mix")
	f.StringVar(&o.Dir, "dir", "", "work directory for the servers' configurations and logs (default: a temp dir, removed afterwards)")
	f.StringVar(&jsonOut, "json", "", "also write the report as JSON to this file (- for stdout)")
	return cmd
}
