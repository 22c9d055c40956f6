package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
)

// InjectRun is one measured injection.
type InjectRun struct {
	Datasets      int     `json:"datasets"`
	Updates       int     `json:"updates"`
	DecodeSeconds float64 `json:"decode_seconds"`
	Seconds       float64 `json:"seconds"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	UpdatesPerSec float64 `json:"updates_per_second"`
	UpdatesPerCPU float64 `json:"updates_per_cpu_second"`
}

// InjectOptions say which documents to inject.
type InjectOptions struct {
	Sizes      []int     // documents to inject, in datasets
	Sites      int       // sites each document defines (at least 3)
	CPUProfile string    // file for a CPU profile of the injections ("": none)
	Progress   io.Writer // where each injection's progress goes, at most once a second
}

// Inject injects synthetic campaign documents of growing size into store
// (loaded from d) through the same path as `dynamo inventory inject`
// (JSON decode, then one write) and reports the growth exponent of the
// cost. It writes to the database.
func Inject(ctx context.Context, d *db.DB, store *inventory.Store, o InjectOptions, log *logrus.Entry) (map[string]any, error) {
	stop, err := startCPUProfile(o.CPUProfile)
	if err != nil {
		return nil, err
	}
	defer stop()
	// Names unique to this run, so that it can be repeated on the same
	// database.
	run := fmt.Sprintf("R%x", time.Now().UnixNano()&0xffffffffff)
	var runs []InjectRun
	for i, n := range o.Sizes {
		doc := synth.InjectDoc(synth.InjectSpec{Sites: o.Sites, Datasets: n, Seed: uint64(i + 1), Prefix: fmt.Sprintf("%s_%d_", run, i)})
		raw, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		doc = nil
		runtime.GC()
		c0, t0 := cpuSeconds(), time.Now()
		decoded, err := inventory.DecodeInjectDoc(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		decode := time.Since(t0).Seconds()
		res, err := store.InjectWithProgress(ctx, time.Now(), decoded, inventory.ProgressPrinter(o.Progress, time.Now))
		if err != nil {
			return nil, err
		}
		r := InjectRun{Datasets: n, Updates: res.Updates, DecodeSeconds: decode,
			Seconds: time.Since(t0).Seconds(), CPUSeconds: cpuSeconds() - c0}
		r.UpdatesPerSec = float64(r.Updates) / r.Seconds
		r.UpdatesPerCPU = float64(r.Updates) / r.CPUSeconds
		runs = append(runs, r)
		log.WithField("component", "bench").WithField("datasets", n).WithField("updates", r.Updates).
			WithField("seconds", math.Round(r.Seconds*1000)/1000).WithField("updates_per_second", math.Round(r.UpdatesPerSec)).Info("injected")
	}
	var xs, wall, cpu []float64
	for _, r := range runs {
		xs = append(xs, float64(r.Updates))
		wall = append(wall, r.Seconds)
		cpu = append(cpu, r.CPUSeconds)
	}
	return map[string]any{
		"db": d.Name, "runs": runs,
		"exponent_wall": logLogSlope(xs, wall), "exponent_cpu": logLogSlope(xs, cpu),
		"gomaxprocs": runtime.GOMAXPROCS(0), "loadavg": loadAvg(),
	}, nil
}
