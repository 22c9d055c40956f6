package fileop_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/fileop"
	_ "github.com/dynamo-go/dynamo/fileop/driver/all"
	"github.com/dynamo-go/dynamo/fileop/fileoptest"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

var t0 = time.Unix(1_700_000_000, 0)

func testLog(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(tWriter{t})
	l.SetLevel(logrus.InfoLevel)
	return l.WithField("component", "fileop")
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func testConfig() fileop.Config {
	c := fileop.DefaultConfig()
	c.Interval = 20 * time.Millisecond
	c.RetryBase = time.Second
	c.BatchSize = 7 // several batches per link
	c.Native.Workers = 4
	return c
}

type env struct {
	d     *db.DB
	store *inventory.Store
	fed   *fileoptest.Federation
}

func setup(t *testing.T, d *db.DB, nfiles int, size int64) *env {
	t.Helper()
	ctx := context.Background()
	s, err := inventory.Load(ctx, d, testLog(t), nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	fed, err := fileoptest.Setup(ctx, s, t.TempDir(), nfiles, size, 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	return &env{d: d, store: s, fed: fed}
}

// runUntil runs a daemon until no subscription is new, inbatch or retry
// (or the timeout passes) and returns the daemon's error.
func (e *env) runUntil(t *testing.T, cfg fileop.Config, o fileop.Options, timeout time.Duration) {
	t.Helper()
	dm, err := fileop.New(cfg, e.store, testLog(t), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dm.Run(ctx) }()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if e.count(t, "state IN ('new', 'inbatch', 'retry')") == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v", err)
	}
}

func (e *env) count(t *testing.T, where string, args ...any) int {
	t.Helper()
	var n int
	if err := e.d.Get(&n, "SELECT COUNT(*) FROM "+fileop.TableSubscriptions+" WHERE "+where, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) historyCount(t *testing.T, where string) int {
	t.Helper()
	var n int
	if err := e.d.Get(&n, "SELECT COUNT(*) FROM "+fileop.TableHistory+" WHERE "+where); err != nil {
		t.Fatal(err)
	}
	return n
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatalf("destination: %v", err)
	}
	if !bytes.Equal(x, y) {
		t.Fatalf("%s differs from %s", b, a)
	}
}

// replica returns the destination replica as a freshly loaded inventory
// sees it (the database, not just memory).
func (e *env) reloadedReplica(t *testing.T, site inventory.SiteID) (inventory.BlockReplica, bool) {
	t.Helper()
	s, err := inventory.Load(context.Background(), e.d, testLog(t), nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	return s.Snapshot().BlockReplica(e.fed.Block, site)
}

func TestTransferCompletesReplicaInTheSameWrite(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 20, 3000)
		n, err := e.fed.QueueCopy(context.Background(), t0, 1)
		if err != nil || n != 20 {
			t.Fatalf("queued %d: %v", n, err)
		}
		// Queueing again is idempotent.
		if n, err := e.fed.QueueCopy(context.Background(), t0, 1); err != nil || e.count(t, "live = 1") != 20 {
			t.Fatalf("requeue: %d %v, live %d", n, err, e.count(t, "live = 1"))
		}
		reg := prometheus.NewRegistry()
		e.runUntil(t, testConfig(), fileop.Options{Registerer: reg}, 30*time.Second)
		if got := metricValue(t, reg, "dynamo_fileop_transferred_bytes_total"); got != 20*3000 {
			t.Fatalf("bytes metric %v, want %d", got, 20*3000)
		}
		// The documented per-link throughput gauge exists for the link used.
		if got := metricValue(t, reg, "dynamo_fileop_link_bytes_per_second"); got <= 0 {
			t.Fatalf("link throughput %v, want > 0", got)
		}
		if got := e.count(t, "state = 'done'"); got != 20 {
			t.Fatalf("%d done, want 20", got)
		}
		for _, f := range e.fed.Files {
			sameFile(t, filepath.Join(e.fed.SrcDir, f.LFN), filepath.Join(e.fed.DstDir, f.LFN))
		}
		for _, r := range []func() (inventory.BlockReplica, bool){
			func() (inventory.BlockReplica, bool) {
				return e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Dst.ID)
			},
			func() (inventory.BlockReplica, bool) { return e.reloadedReplica(t, e.fed.Dst.ID) },
		} {
			rep, ok := r()
			if !ok || !rep.Complete || rep.NumFiles != 20 || rep.Size != 20*3000 {
				t.Fatalf("destination replica %+v (exists %v), want complete", rep, ok)
			}
		}
		if h := e.historyCount(t, "outcome = 'done' AND checksum = 'ok' AND bytes = 3000"); h != 20 {
			t.Fatalf("%d history rows done with checksum ok, want 20", h)
		}
		var open int
		if err := d.Get(&open, "SELECT COUNT(*) FROM "+fileop.TableBatches+" WHERE state = 'open'"); err != nil || open != 0 {
			t.Fatalf("%d batches still open (%v)", open, err)
		}
	})
}

// metricValue returns the value of a metric family's single series.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			v := mf.GetMetric()[0]
			var val float64
			switch {
			case v.Counter != nil:
				val = v.Counter.GetValue()
			case v.Gauge != nil:
				val = v.Gauge.GetValue()
			}
			return val
		}
	}
	t.Fatalf("no single-series metric %s", name)
	return 0
}

func TestDeletionEmptiesThenRemovesReplica(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 9, 100)
		ctx := context.Background()
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, testConfig(), fileop.Options{}, 30*time.Second)
		n, err := e.fed.QueueDelete(ctx, t0, e.fed.Dst.ID)
		if err != nil || n != 9 {
			t.Fatalf("queued %d deletions: %v", n, err)
		}
		cfg := testConfig()
		cfg.BatchSize = 4
		cfg.Native.Workers = 1
		e.runUntil(t, cfg, fileop.Options{}, 30*time.Second)
		if got := e.count(t, "op = 'deletion' AND state = 'done'"); got != 9 {
			t.Fatalf("%d deletions done", got)
		}
		for _, f := range e.fed.Files {
			if _, err := os.Stat(filepath.Join(e.fed.DstDir, f.LFN)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s still at the destination (%v)", f.LFN, err)
			}
		}
		if _, ok := e.reloadedReplica(t, e.fed.Dst.ID); ok {
			t.Fatal("destination replica still in the inventory")
		}
		if _, ok := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Dst.ID); ok {
			t.Fatal("destination replica still in memory")
		}
		var rows int
		if err := d.Get(&rows, "SELECT COUNT(*) FROM block_replica_files WHERE site_id = ?", e.fed.Dst.ID); err != nil || rows != 0 {
			t.Fatalf("%d replica file rows left (%v)", rows, err)
		}
		// The (non-growing) dataset replica went with its last block
		// replica: nothing is left to list the dataset at the site.
		snap := e.store.Snapshot()
		b, _ := snap.Block(e.fed.Block)
		for dr := range snap.DatasetReplicas(b.Dataset) {
			if dr.Site == e.fed.Dst.ID {
				t.Fatal("empty dataset replica left at the destination")
			}
		}
		if err := d.Get(&rows, "SELECT COUNT(*) FROM dataset_replicas WHERE site_id = ?", e.fed.Dst.ID); err != nil || rows != 0 {
			t.Fatalf("%d dataset replica rows left at the destination (%v)", rows, err)
		}
	})
}

func TestDeletionCancelsPendingTransfers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 5, 10)
		ctx := context.Background()
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		// Nothing arrived yet: the deletion cancels every transfer and the
		// empty replica goes at once.
		if _, err := e.fed.QueueDelete(ctx, t0, e.fed.Dst.ID); err != nil {
			t.Fatal(err)
		}
		if got := e.count(t, "op = 'transfer' AND state = 'cancelled' AND live IS NULL"); got != 5 {
			t.Fatalf("%d transfers cancelled, want 5", got)
		}
		if _, ok := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Dst.ID); ok {
			t.Fatal("empty replica not deleted")
		}
		// Queueing the deletion of a replica that is gone is a no-op.
		if n, err := e.fed.QueueDelete(ctx, t0, e.fed.Dst.ID); err != nil || n != 0 {
			t.Fatalf("deleting a missing replica: %d, %v", n, err)
		}
		// And a single-file deletion request cancels that file's transfer.
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		err := d.InTx(ctx, func(tx *sqlxTx) error {
			_, err := fileop.Enqueue(ctx, d, tx, t0, []fileop.Request{{Op: fileop.OpDeletion, File: e.fed.Files[0], Site: e.fed.Dst.ID}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.count(t, "op = 'transfer' AND file_id = ? AND state = 'cancelled'", e.fed.Files[0].ID); got != 2 {
			t.Fatalf("file 0: %d cancelled transfers, want 2", got)
		}
	})
}

func TestIrrecoverableSourceIsHeldThenReleased(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 3, 50)
		ctx := context.Background()
		lost := filepath.Join(e.fed.SrcDir, e.fed.Files[1].LFN)
		saved, _ := os.ReadFile(lost)
		if err := os.Remove(lost); err != nil {
			t.Fatal(err)
		}
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, testConfig(), fileop.Options{}, 30*time.Second)
		held, err := fileop.Held(ctx, d, 0)
		if err != nil || len(held) != 1 || held[0].FileID != int64(e.fed.Files[1].ID) || held[0].HoldReason != fileop.HoldAllFailed || held[0].Tries != 1 {
			t.Fatalf("held %+v (%v), want file 1 all_failed after one try", held, err)
		}
		// The message names the failed source and why, without the
		// site's physical path.
		if m := held[0].Message; !strings.Contains(m, "T2_SRC (1 failure, last: errno ENOENT)") || !strings.Contains(m, "from T2_SRC:") ||
			!strings.Contains(m, "T2_SRC:"+e.fed.Files[1].LFN) || strings.Contains(m, e.fed.SrcDir) {
			t.Fatalf("held message %q: want the source, the cause and no physical path", m)
		}
		if h := e.historyCount(t, "outcome = 'failed' AND code = 'errno ENOENT'"); h != 1 {
			t.Fatalf("%d failed history rows with errno ENOENT", h)
		}
		rep, _ := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Dst.ID)
		if rep.Complete || rep.NumFiles != 2 || rep.Size != 100 {
			t.Fatalf("partial replica %+v, want 2 files, 100 bytes", rep)
		}
		if err := os.WriteFile(lost, saved, 0o644); err != nil {
			t.Fatal(err)
		}
		// A note where a hold reason belongs would match nothing: refused.
		if _, err := fileop.ReleaseWith(ctx, d, t0, fileop.ReleaseOptions{HoldReason: "restored the file"}); !errors.Is(err, fileop.ErrInvalid) {
			t.Fatalf("free text as a hold reason: %v", err)
		}
		if n, err := fileop.ReleaseWith(ctx, d, t0, fileop.ReleaseOptions{HoldReason: fileop.HoldAllFailed, Comment: "restored the lost file", By: "op"}); err != nil || n != 1 {
			t.Fatalf("released %d: %v", n, err)
		}
		if sub, err := fileop.Get(ctx, d, held[0].ID); err != nil || sub.Message != "released by op: restored the lost file" {
			t.Fatalf("released subscription's message %q (%v)", sub.Message, err)
		}
		e.runUntil(t, testConfig(), fileop.Options{}, 30*time.Second)
		rep, _ = e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Dst.ID)
		if !rep.Complete {
			t.Fatalf("replica %+v not complete after release", rep)
		}
	})
}

func TestChecksumMismatchRemovesCopyAndHolds(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 2, 64)
		ctx := context.Background()
		bad := filepath.Join(e.fed.SrcDir, e.fed.Files[0].LFN)
		if err := os.WriteFile(bad, bytes.Repeat([]byte{'x'}, 64), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.MaxTries = 1
		e.runUntil(t, cfg, fileop.Options{}, 30*time.Second)
		if e.historyCount(t, "outcome = 'failed' AND checksum = 'mismatch'") != 1 {
			t.Fatal("no history row with a checksum mismatch")
		}
		if e.count(t, "state = 'held' AND hold_reason = 'all_failed'") != 1 {
			t.Fatal("mismatched file not held after max_tries")
		}
		if _, err := os.Stat(filepath.Join(e.fed.DstDir, e.fed.Files[0].LFN)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("bad copy left at the destination: %v", err)
		}
	})
}

func TestUnavailableSiteIsHeld(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 2, 10)
		ctx := context.Background()
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		dst := e.fed.Dst
		dst.Status = inventory.SiteWaitroom
		if _, err := e.store.Write(ctx, t0, func(t *inventory.Txn) error { return t.Add(inventory.UpsertSite{Site: dst}) }); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, testConfig(), fileop.Options{}, 10*time.Second)
		if got := e.count(t, "state = 'held' AND hold_reason = 'site_unavailable'"); got != 2 {
			t.Fatalf("%d held site_unavailable, want 2", got)
		}
	})
}
