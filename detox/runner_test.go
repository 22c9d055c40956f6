package detox

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRunner(t *testing.T) {
	ctx := context.Background()
	h := seedApply(t, nil)
	file := filepath.Join(t.TempDir(), "Default.txt")
	require.NoError(t, os.WriteFile(file, []byte(applyPolicy), 0o644))
	cfg := DefaultConfig()
	cfg.Partitions = map[string]PartitionConfig{"Default": {Policy: file}}
	cfg.MaxVolumePerCycle = 100
	q := &MemQueue{}
	r := &Runner{Store: h.store, History: NewHistory(h.d), Config: cfg, Queue: q, Log: h.log}

	// Dry run: recorded as planned, nothing queued.
	res, err := r.RunCycle(ctx, "Default", RunOptions{DryRun: true, At: h.now})
	require.NoError(t, err)
	require.True(t, res.DryRun)
	require.Nil(t, res.Applied)
	c, err := r.History.Cycle(ctx, res.CycleID)
	require.NoError(t, err)
	require.Equal(t, StatusPlanned, c.Status)
	require.True(t, c.DryRun)

	// Over the volume cap: recorded as failed, nothing queued.
	res, err = r.RunCycle(ctx, "Default", RunOptions{At: h.now})
	require.ErrorIs(t, err, ErrCapExceeded)
	c, err = r.History.Cycle(ctx, res.CycleID)
	require.NoError(t, err)
	require.Equal(t, StatusFailed, c.Status)
	require.Contains(t, c.Message, "cap")
	require.Empty(t, q.Items)

	// Within the cap: applied.
	r.Config.MaxVolumePerCycle = 0
	all, err := r.RunAll(ctx, RunOptions{At: h.now})
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Equal(t, int64(300), all[0].Applied.Bytes)
	require.Len(t, q.Items, 3)
	c, err = r.History.Cycle(ctx, all[0].CycleID)
	require.NoError(t, err)
	require.Equal(t, StatusApplied, c.Status)

	// No policy for a partition: a clear error.
	_, err = r.RunCycle(ctx, "Other", RunOptions{})
	require.ErrorIs(t, err, ErrNoPolicy)
}
