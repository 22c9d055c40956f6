package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchInjectCmd) }

// injectRun is one measured injection.
type injectRun struct {
	Datasets      int     `json:"datasets"`
	Updates       int     `json:"updates"`
	DecodeSeconds float64 `json:"decode_seconds"`
	Seconds       float64 `json:"seconds"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	UpdatesPerSec float64 `json:"updates_per_second"`
	UpdatesPerCPU float64 `json:"updates_per_cpu_second"`
}

// newBenchInjectCmd injects synthetic campaign documents of growing size
// through the same path as `dynamo inventory inject` (JSON decode, then
// one write) and reports the growth exponent of the cost.
func newBenchInjectCmd(g *globalOptions) *cobra.Command {
	var sizes []int
	var sites int
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "inject",
		Short: "Inject synthetic campaign documents of growing size into --db and print updates/s and the growth exponent",
		Long: `Inject synthetic campaign documents of growing size into the database
(--db; it may already hold an inventory: the documents use fresh names) and
print one JSON object: per size the updates, wall and CPU seconds, and the
log-log slope of cost against updates (1 is linear). Each document is a
campaign of new datasets with blocks, files and replicas (about 15 updates
per dataset). It writes to the database: use a scratch one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if len(sizes) == 0 || sites < 3 {
				return usageError{fmt.Errorf("--datasets needs at least one size and --sites at least 3")}
			}
			e, err := g.open(ctx, true)
			if err != nil {
				return err
			}
			defer e.db.Close()
			store, err := e.loadInventory(ctx)
			if err != nil {
				return err
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			// Names unique to this run, so that it can be repeated on the
			// same database.
			run := fmt.Sprintf("R%x", time.Now().UnixNano()&0xffffffffff)
			var runs []injectRun
			for i, n := range sizes {
				doc := synth.InjectDoc(synth.InjectSpec{Sites: sites, Datasets: n, Seed: uint64(i + 1), Prefix: fmt.Sprintf("%s_%d_", run, i)})
				raw, err := json.Marshal(doc)
				if err != nil {
					return err
				}
				doc = nil
				runtime.GC()
				c0, t0 := cpuSeconds(), time.Now()
				decoded, err := inventory.DecodeInjectDoc(bytes.NewReader(raw))
				if err != nil {
					return err
				}
				decode := time.Since(t0).Seconds()
				res, err := store.InjectWithProgress(ctx, time.Now(), decoded, injectProgress(g.stderr, time.Now))
				if err != nil {
					return err
				}
				r := injectRun{Datasets: n, Updates: res.Updates, DecodeSeconds: decode,
					Seconds: time.Since(t0).Seconds(), CPUSeconds: cpuSeconds() - c0}
				r.UpdatesPerSec = float64(r.Updates) / r.Seconds
				r.UpdatesPerCPU = float64(r.Updates) / r.CPUSeconds
				runs = append(runs, r)
				e.log.WithField("component", "bench").WithField("datasets", n).WithField("updates", r.Updates).
					WithField("seconds", math.Round(r.Seconds*1000)/1000).WithField("updates_per_second", math.Round(r.UpdatesPerSec)).Info("injected")
			}
			var xs, wall, cpu []float64
			for _, r := range runs {
				xs = append(xs, float64(r.Updates))
				wall = append(wall, r.Seconds)
				cpu = append(cpu, r.CPUSeconds)
			}
			return json.NewEncoder(g.stdout).Encode(map[string]any{
				"db": e.db.Name, "runs": runs,
				"exponent_wall": logLogSlope(xs, wall), "exponent_cpu": logLogSlope(xs, cpu),
				"gomaxprocs": runtime.GOMAXPROCS(0), "loadavg": loadAvg(),
			})
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&sizes, "datasets", []int{70, 700, 7000, 70000}, "documents to inject, in datasets (about 15 updates each)")
	f.IntVar(&sites, "sites", 51, "sites each document defines")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the injections to this file")
	return cmd
}

// logLogSlope is the least-squares slope of log(y) against log(x): the
// exponent k of y ~ x^k; nil (JSON null) with fewer than two points.
func logLogSlope(x, y []float64) any {
	if len(x) < 2 {
		return nil
	}
	var sx, sy, sxx, sxy float64
	n := float64(len(x))
	for i := range x {
		lx, ly := math.Log(x[i]), math.Log(math.Max(y[i], 1e-9))
		sx += lx
		sy += ly
		sxx += lx * lx
		sxy += lx * ly
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// injectProgress prints an injection's progress to w at most once a
// second, so a small document prints nothing and a campaign shows it is
// moving.
func injectProgress(w io.Writer, now func() time.Time) func(inventory.Progress) {
	var mu sync.Mutex
	start := now()
	last := start
	return func(p inventory.Progress) {
		mu.Lock()
		defer mu.Unlock()
		t := now()
		if t.Sub(last) < time.Second {
			return
		}
		last = t
		switch p.Phase {
		case "build":
			fmt.Fprintf(w, "inject: validated %d of %d datasets (%s)\n", p.Done, p.Total, t.Sub(start).Round(time.Second))
		default:
			fmt.Fprintf(w, "inject: wrote %d of %d updates (%s)\n", p.Done, p.Total, t.Sub(start).Round(time.Second))
		}
	}
}
