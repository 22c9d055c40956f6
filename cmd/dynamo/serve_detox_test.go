package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/scheduler"
)

// Detox runs as a scheduler writer application per partition: a read-only
// run records a planned cycle only; a writer run marks the replicas pending
// deletion under the scheduler's lease, queues the files and records an
// applied cycle.
func TestDetoxAsSchedulerWriter(t *testing.T) {
	ctx := context.Background()
	d := testdb.SQLite(t)
	store, err := inventory.Load(ctx, d, logging.Discard(), nil, time.Now())
	require.NoError(t, err)
	f, err := os.Open("testdata/detox_inventory.json")
	require.NoError(t, err)
	doc, err := inventory.DecodeInjectDoc(f)
	f.Close()
	require.NoError(t, err)
	_, err = store.Inject(ctx, time.Now(), doc)
	require.NoError(t, err)

	pol, err := os.ReadFile("testdata/detox_policy.txt")
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "Default.txt")
	require.NoError(t, os.WriteFile(file, pol, 0o644))
	cfg := detox.DefaultConfig()
	cfg.Partitions = map[string]detox.PartitionConfig{"Default": {Policy: file}}
	q := &detox.MemQueue{}
	hist := detox.NewHistory(d)
	r := &detox.Runner{Store: store, History: hist, Config: cfg, Queue: q, Log: logging.Discard(),
		Sources: detox.Sources{Accesses: detox.DBAccesses{DB: d}, Locks: &detox.MemLocks{}}}

	scfg := scheduler.Config{ServerID: "t", LeasePeriod: time.Second, Heartbeat: 100 * time.Millisecond,
		Grace: 2 * time.Second, RetryDelay: 10 * time.Millisecond,
		DefaultTimeout: 30 * time.Second, MaxReaders: 2}
	sch, err := scheduler.New(scfg, store, logging.Discard(), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, sch.Register(detoxApp(r, "Default")))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sch.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(5 * time.Second); !sch.Leader(); time.Sleep(20 * time.Millisecond) {
		require.False(t, time.Now().After(deadline), "no writer lease")
	}

	run, err := sch.RunNow(ctx, scheduler.RunRequest{App: "detox:Default", ReadOnly: true, Wait: true})
	require.NoError(t, err)
	require.Equal(t, scheduler.StatusOK, run.Status, "%+v", run)
	cycles, err := hist.Cycles(ctx, "Default", 10)
	require.NoError(t, err)
	require.Len(t, cycles, 1)
	require.Equal(t, detox.StatusPlanned, cycles[0].Status)
	require.Empty(t, q.Items)

	run, err = sch.RunNow(ctx, scheduler.RunRequest{App: "detox:Default", Wait: true})
	require.NoError(t, err)
	require.Equal(t, scheduler.StatusOK, run.Status, "%+v", run)
	cycles, err = hist.Cycles(ctx, "Default", 10)
	require.NoError(t, err)
	require.Len(t, cycles, 2)
	require.Equal(t, detox.StatusApplied, cycles[0].Status)
	require.Len(t, q.Items, 2) // /Big's two files at T2_A
	snap := store.Snapshot()
	site, _ := snap.SiteByName("T2_A")
	require.Equal(t, int64(700), snap.PendingDeletion(site.ID))
}
