package detox

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// Cycle metrics count each outcome and the bytes applied; the history
// answers the console's per-site and per-dataset questions; watermarks
// come from the policy's occupancy lines at the sites its On line picks.
func TestRunnerMetricsHistoryAndWatermarks(t *testing.T) {
	ctx := context.Background()
	h := seedApply(t, nil)
	file := filepath.Join(t.TempDir(), "Default.txt")
	pol := "Partition Default\nOn site.name == T2_A\nWhen site.occupancy > 0.2\nUntil site.occupancy < 0.1\nProtect dataset.name == /Keep/*/*\nDismiss\n"
	require.NoError(t, os.WriteFile(file, []byte(pol), 0o644))
	cfg := DefaultConfig()
	cfg.Partitions = map[string]PartitionConfig{"Default": {Policy: file}}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	r := &Runner{Store: h.store, History: NewHistory(h.d), Config: cfg, Queue: &MemQueue{}, Log: h.log, Metrics: m}

	wms, err := r.Watermarks(h.store.Snapshot(), h.now)
	require.NoError(t, err)
	require.Len(t, wms, 1, "only T2_A is targeted")
	require.Equal(t, "T2_A", wms[0].Site)
	require.InDelta(t, 0.2, wms[0].High, 1e-9)
	require.InDelta(t, 0.1, wms[0].Low, 1e-9)
	require.True(t, wms[0].Triggered, "350 of 1000 is over 0.2")

	_, err = r.RunCycle(ctx, "Default", RunOptions{DryRun: true, At: h.now})
	require.NoError(t, err)
	res, err := r.RunCycle(ctx, "Default", RunOptions{At: h.now})
	require.NoError(t, err)
	require.Equal(t, 1.0, testutil.ToFloat64(m.cycle.Cycles("Default", StatusPlanned)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.cycle.Cycles("Default", StatusApplied)))
	require.Equal(t, float64(res.Applied.Bytes), testutil.ToFloat64(m.bytes.WithLabelValues("Default", "T2_A")))
	require.Positive(t, testutil.ToFloat64(m.decisions.WithLabelValues("Default", "delete")))
	require.Positive(t, testutil.ToFloat64(m.decisions.WithLabelValues("Default", "protect")))

	// A second runner in the process shares the series.
	_, err = NewMetrics(reg)
	require.NoError(t, err)

	hist, err := r.History.SiteHistory(ctx, "T2_A", 0)
	require.NoError(t, err)
	require.Len(t, hist, 2)
	require.Less(t, hist[0].CycleID, hist[1].CycleID, "oldest first")
	require.Equal(t, int64(350), hist[1].Before)
	require.Less(t, hist[1].After, hist[1].Before)

	ds, err := r.History.DatasetDecisions(ctx, "/Keep/R-v1/AOD", 0)
	require.NoError(t, err)
	require.NotEmpty(t, ds)
	require.Equal(t, res.CycleID, ds[0].CycleID, "newest first")
	require.Equal(t, "protect", ds[0].Decision)
	require.Contains(t, ds[0].RuleText, "Protect dataset.name")
}
