package fileop_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// flaky wraps a backend and turns the first result of every task into a
// recoverable failure.
type flaky struct {
	fileop.Backend
	mu   sync.Mutex
	seen map[int64]bool
}

func (f *flaky) Run(ctx context.Context, report func(fileop.Result)) error {
	return f.Backend.Run(ctx, func(r fileop.Result) {
		f.mu.Lock()
		first := !f.seen[r.SubID]
		f.seen[r.SubID] = true
		f.mu.Unlock()
		if first {
			r.Err, r.Recoverable, r.Code = errors.New("transient: connection reset"), true, "test"
		}
		report(r)
	})
}

// TestRecoverableFailureRetriesAfterBackoff: inbatch -> retry (with
// next_try in the future and the source failure remembered) -> inbatch ->
// done.
func TestRecoverableFailureRetriesAfterBackoff(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 3, 10)
		ctx := context.Background()
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		start := time.Now()
		e.runUntil(t, cfg, fileop.Options{Backend: &flaky{Backend: fileop.NewNative(cfg.Native, cfg.Driver, testLog(t)), seen: map[int64]bool{}}}, 30*time.Second)
		if time.Since(start) < time.Second {
			t.Fatalf("finished in %v: the retry did not wait for the backoff", time.Since(start))
		}
		if got := e.count(t, "state = 'done' AND tries = 1"); got != 3 {
			t.Fatalf("%d done after one failed try, want 3", got)
		}
		if e.historyCount(t, "outcome = 'failed'") != 3 || e.historyCount(t, "outcome = 'done'") != 3 {
			t.Fatal("history should hold one failure and one success per file")
		}
		var n int
		if err := d.Get(&n, "SELECT COUNT(*) FROM "+fileop.TableSourceFailures+" WHERE failures = 1 AND recoverable = 1"); err != nil || n != 3 {
			t.Fatalf("%d source failure rows (%v)", n, err)
		}
		if rep, _ := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Dst.ID); !rep.Complete {
			t.Fatal("replica not complete")
		}
	})
}

// TestDestinationAlreadyPresentIsNotCopiedAgain: a destination file with
// the right size and adler32 (a copy finished just before a crash) is
// taken as done without rewriting it; one with other content is replaced
// when overwrite is on.
func TestDestinationAlreadyPresentIsNotCopiedAgain(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 2, 100)
		ctx := context.Background()
		good, bad := e.fed.Files[0], e.fed.Files[1]
		for _, f := range []inventory.File{good, bad} {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(e.fed.DstDir, f.LFN)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		data, _ := os.ReadFile(filepath.Join(e.fed.SrcDir, good.LFN))
		if err := os.WriteFile(filepath.Join(e.fed.DstDir, good.LFN), data, 0o644); err != nil {
			t.Fatal(err)
		}
		old := time.Unix(1_600_000_000, 0)
		if err := os.Chtimes(filepath.Join(e.fed.DstDir, good.LFN), old, old); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.fed.DstDir, bad.LFN), make([]byte, 100), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.Native.Overwrite = true
		e.runUntil(t, cfg, fileop.Options{}, 20*time.Second)
		if e.historyCount(t, "mode = 'present' AND outcome = 'done'") != 1 || e.historyCount(t, "mode = 'stream' AND outcome = 'done'") != 1 {
			h, _ := fileop.History(ctx, d, 0, 10)
			t.Fatalf("want one present and one streamed: %+v", h)
		}
		st, err := os.Stat(filepath.Join(e.fed.DstDir, good.LFN))
		if err != nil || !st.ModTime().Equal(old) {
			t.Fatalf("present file rewritten (%v, %v)", st.ModTime(), err)
		}
		sameFile(t, filepath.Join(e.fed.SrcDir, bad.LFN), filepath.Join(e.fed.DstDir, bad.LFN))
	})
}

func TestNoSourceIsHeld(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 2, 10)
		ctx := context.Background()
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Write(ctx, t0, func(tx *inventory.Txn) error {
			return tx.Add(inventory.DeleteBlockReplica{Block: e.fed.Block, Site: e.fed.Src.ID})
		}); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, testConfig(), fileop.Options{}, 10*time.Second)
		if got := e.count(t, "state = 'held' AND hold_reason = 'no_source'"); got != 2 {
			t.Fatalf("%d held no_source, want 2", got)
		}
	})
}

// lastFirst prefers the highest file id.
type lastFirst struct{}

func (lastFirst) Priority(s *fileop.Subscription) float64 { return float64(s.FileID) }

// TestPrioritizerOrdersDispatch: with one operation in flight at a time,
// files complete in the prioritizer's order, not the queue's.
func TestPrioritizerOrdersDispatch(t *testing.T) {
	d := testdb.SQLite(t)
	e := setup(t, d, 5, 10)
	if _, err := e.fed.QueueCopy(context.Background(), t0, 0); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.MaxPending, cfg.BatchSize = 1, 1
	e.runUntil(t, cfg, fileop.Options{Prioritizer: lastFirst{}}, 20*time.Second)
	var order []int64
	if err := d.Select(&order, "SELECT file_id FROM "+fileop.TableHistory+" ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(order); i++ {
		if order[i] > order[i-1] {
			t.Fatalf("completion order %v, want descending file ids", order)
		}
	}
	if len(order) != 5 {
		t.Fatalf("%d completions", len(order))
	}
}
