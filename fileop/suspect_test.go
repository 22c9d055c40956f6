package fileop_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// A source replica whose file keeps failing the checksum is flagged
// suspicious after suspect_after_mismatches mismatches: it no longer
// counts as a copy and is not used as a source, so the transfer is held
// for no source. A retry from it is refused while flagged; once an
// operator clears the flag, a retry from the named source completes.
func TestMismatchesFlagSourceSuspicious(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 2, 64)
		ctx := context.Background()
		bad := filepath.Join(e.fed.SrcDir, e.fed.Files[0].LFN)
		good, err := os.ReadFile(bad)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bad, bytes.Repeat([]byte{'x'}, 64), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.RetryBase = 10 * time.Millisecond
		cfg.SuspectAfterMismatches = 2
		e.runUntil(t, cfg, fileop.Options{}, 30*time.Second)
		if n := e.historyCount(t, "outcome = 'failed' AND checksum = 'mismatch'"); n != 2 {
			t.Fatalf("%d mismatches recorded, want 2 (then no source)", n)
		}
		src, _ := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Src.ID)
		if !src.Suspicious {
			t.Fatalf("source replica not flagged suspicious: %+v", src)
		}
		if reloaded, _ := e.reloadedReplica(t, e.fed.Src.ID); !reloaded.Suspicious {
			t.Fatal("suspicious flag not persisted")
		}
		if inventory.UsableCopies(e.store.Snapshot(), e.fed.Block, 0) != 0 {
			t.Fatal("a suspicious replica still counts as a copy")
		}
		held, err := fileop.Held(ctx, d, 0)
		if err != nil || len(held) != 1 || held[0].HoldReason != fileop.HoldNoSource {
			t.Fatalf("held %+v (%v), want the mismatched file held for no source", held, err)
		}
		rows, err := fileop.ReplicaHealthList(ctx, d, e.store.Snapshot())
		if err != nil || len(rows) != 1 || rows[0].Mismatches != 2 || !rows[0].Suspicious || rows[0].Site != "T2_SRC" {
			t.Fatalf("replica health %+v (%v)", rows, err)
		}

		snap := e.store.Snapshot()
		if err := fileop.RetryFromSource(ctx, d, snap, t0, held[0].ID, "T2_SRC"); !errors.Is(err, fileop.ErrInvalid) {
			t.Fatalf("retry from a suspicious source: %v", err)
		}
		if err := fileop.RetryFromSource(ctx, d, snap, t0, held[0].ID, "T2_DST"); !errors.Is(err, fileop.ErrInvalid) {
			t.Fatalf("retry from a site without a complete copy: %v", err)
		}
		// The operator repairs the source and clears the flag.
		if err := os.WriteFile(bad, good, 0o644); err != nil {
			t.Fatal(err)
		}
		blockName := snap.BlockFullName(e.fed.Block)
		if err := fileop.MarkReplica(ctx, e.store, d, snap, blockName, "T2_SRC", true, "", t0); !errors.Is(err, fileop.ErrInvalid) {
			t.Fatalf("declaring bad without a reason: %v", err)
		}
		if err := fileop.MarkReplica(ctx, e.store, d, snap, blockName, "T2_SRC", false, "", t0); err != nil {
			t.Fatal(err)
		}
		if r, _ := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Src.ID); r.Suspicious {
			t.Fatal("flag not cleared")
		}
		if err := fileop.RetryFromSource(ctx, d, e.store.Snapshot(), t0, held[0].ID, "T2_SRC"); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, cfg, fileop.Options{}, 30*time.Second)
		if rep, _ := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Dst.ID); !rep.Complete {
			t.Fatalf("replica %+v not complete after the retry from the named source", rep)
		}
		var forced int
		if err := d.Get(&forced, "SELECT COUNT(*) FROM "+fileop.TableForcedSources); err != nil || forced != 0 {
			t.Fatalf("%d named sources left after success (%v)", forced, err)
		}

		// Declared bad by an operator: flagged, with the reason.
		if err := fileop.MarkReplica(ctx, e.store, d, e.store.Snapshot(), blockName, "T2_DST", true, "disk server lost", t0); err != nil {
			t.Fatal(err)
		}
		rows, _ = fileop.ReplicaHealthList(ctx, d, e.store.Snapshot())
		if len(rows) != 1 || rows[0].Site != "T2_DST" || !rows[0].Suspicious || rows[0].Reason != "declared bad: disk server lost" {
			t.Fatalf("replica health after declaring bad: %+v", rows)
		}
	})
}
