package fileop_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/estimator"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/fileop/driver"
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
// taken as done without rewriting it; one with other content is refused
// with keep_existing and replaced by default.
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
		// keep_existing: the file with other content is refused and held.
		cfg := testConfig()
		cfg.Native.KeepExisting = true
		e.runUntil(t, cfg, fileop.Options{}, 20*time.Second)
		if e.count(t, "state = 'held' AND file_id = ?", bad.ID) != 1 || e.historyCount(t, "outcome = 'failed' AND message LIKE '%already exists%'") != 1 {
			h, _ := fileop.History(ctx, d, 0, 10)
			t.Fatalf("keep_existing did not refuse the different file: %+v", h)
		}
		// By default it is replaced (after an operator's release here).
		if _, err := fileop.Release(ctx, d, t0, nil, ""); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, testConfig(), fileop.Options{}, 20*time.Second)
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

// lastFirst ranks sources by the file number in their URL, highest first
// (like the estimator ranks sources on disk before those on tape).
type lastFirst struct{}

func (lastFirst) Priorities(_ context.Context, urls []string) map[string]int {
	out := map[string]int{}
	for _, u := range urls {
		var n int
		fmt.Sscanf(u[strings.LastIndex(u, "/f")+2:], "%d", &n)
		out[u] = n
	}
	return out
}

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
		if order[i] > order[i-1] { // file ids follow the file numbers
			t.Fatalf("completion order %v, want descending file ids", order)
		}
	}
	if len(order) != 5 {
		t.Fatalf("%d completions", len(order))
	}
}

// refuse fails every task irrecoverably (permission denied).
type refuse struct{ q chan fileop.Batch }

func (refuse) Name() string { return "refuse" }
func (r refuse) Submit(_ context.Context, b fileop.Batch) (string, error) {
	r.q <- b
	return "", nil
}
func (r refuse) Run(ctx context.Context, report func(fileop.Result)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-r.q:
			for _, t := range b.Tasks {
				report(fileop.Result{SubID: t.SubID, BatchID: b.ID, Err: &driver.Error{Op: "remove", URL: t.Target, Kind: driver.ErrPermission, Code: "http 403"},
					Recoverable: false, Code: "http 403"})
			}
		}
	}
}

// TestIrrecoverableDeletionIsHeld: inbatch -> held(irrecoverable) at the
// first irrecoverable deletion failure; the replica keeps its files. The
// source holds the only copy, so the deletion needs the last-copy opt-in:
// without it nothing is queued.
func TestIrrecoverableDeletionIsHeld(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 3, 10)
		ctx := context.Background()
		if _, err := e.fed.QueueDelete(ctx, t0, e.fed.Src.ID); !errors.Is(err, inventory.ErrLastCopy) {
			t.Fatalf("deleting the only copy: got %v, want ErrLastCopy", err)
		}
		if got := e.count(t, "op = 'deletion'"); got != 0 {
			t.Fatalf("%d deletions queued for a refused last copy", got)
		}
		if _, err := e.fed.QueueDeleteLastCopy(ctx, t0, e.fed.Src.ID); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, testConfig(), fileop.Options{Backend: refuse{q: make(chan fileop.Batch, 16)}}, 10*time.Second)
		if got := e.count(t, "op = 'deletion' AND state = 'held' AND hold_reason = 'irrecoverable' AND tries = 1"); got != 3 {
			t.Fatalf("%d deletions held irrecoverable, want 3", got)
		}
		if rep, ok := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Src.ID); !ok || !rep.Complete {
			t.Fatalf("source replica changed by failed deletions: %+v %v", rep, ok)
		}
	})
}

// The estimator is the production Prioritizer.
var _ fileop.Prioritizer = (*estimator.Estimator)(nil)

// TestUnmanagedDeletion: an orphan (a file at a site but not in the
// inventory) is queued by LFN alone, shows as in flight, is deleted, and
// changes nothing in the inventory.
func TestUnmanagedDeletion(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 1, 10)
		ctx := context.Background()
		orphan := "/store/orphans/x.root"
		p := filepath.Join(e.fed.DstDir, orphan)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("orphan"), 0o644); err != nil {
			t.Fatal(err)
		}
		req := []fileop.Request{{Op: fileop.OpDeletion, Site: e.fed.Dst.ID, File: inventory.File{LFN: orphan, Size: 6}}}
		for i, want := range []fileop.EnqueueResult{{Added: 1}, {Existing: 1}} {
			if got, err := fileop.EnqueueTx(ctx, d, t0, req); err != nil || got != want {
				t.Fatalf("enqueue %d: %+v %v, want %+v", i, got, err, want)
			}
		}
		fl, err := fileop.InFlight(ctx, d, e.fed.Dst.ID)
		if _, ok := fl[orphan]; !ok || err != nil {
			t.Fatalf("in flight %v %v", fl, err)
		}
		seq := e.store.Seq()
		e.runUntil(t, testConfig(), fileop.Options{}, 10*time.Second)
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("orphan not deleted: %v", err)
		}
		if e.count(t, "op = 'deletion' AND state = 'done' AND file_id < 0") != 1 {
			t.Fatal("unmanaged deletion not done")
		}
		if e.store.Seq() != seq {
			t.Fatal("an unmanaged deletion changed the inventory")
		}
		if fl, _ := fileop.InFlight(ctx, d, e.fed.Dst.ID); len(fl) != 0 {
			t.Fatalf("still in flight: %v", fl)
		}
	})
}
