package bench

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/internal/db"
)

// Consistency migrates d (an empty scratch database), runs the
// consistency diff benchmark on it (see consistency.Bench) and reports the
// cold and warm runs.
func Consistency(ctx context.Context, d *db.DB, o consistency.BenchOptions, log *logrus.Entry) (map[string]any, error) {
	if _, err := d.Migrate(ctx); err != nil {
		return nil, err
	}
	o.Progress = func(s string) { log.WithField("component", "bench").Info(s) }
	res, err := consistency.Bench(ctx, d, o)
	if err != nil {
		return nil, err
	}
	run := func(r consistency.BenchRun) map[string]any {
		return map[string]any{"total_seconds": r.Total.Seconds(), "spool_seconds": r.Spool.Seconds(),
			"prepare_seconds": r.Prepare.Seconds(), "diff_seconds": r.Diff.Seconds(), "listing_runs": r.Runs,
			"inventory_runs": r.InventoryRuns, "inventory_side": r.Prepared, "counts": r.Counts}
	}
	return map[string]any{
		"db": d.Name, "files": res.Files, "setup_seconds": res.Setup.Seconds(),
		"cold": run(res.Cold), "warm": run(res.Warm),
		"peak_heap_mib": res.PeakHeap >> 20, "max_rss_mib": res.MaxRSS >> 20,
	}, nil
}
