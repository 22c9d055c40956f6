package scheduler

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

func addSite(name string) func(*inventory.Txn) error {
	return func(t *inventory.Txn) error {
		return t.Add(inventory.UpsertSite{Site: inventory.Site{ID: t.NewSiteID(), Name: name, StorageType: inventory.StorageDisk, Status: inventory.SiteReady}})
	}
}

// A sealed store writes only through the scheduler: on a standby every
// Store.Write is refused as "not the writer", naming the holder and when
// to retry, and nothing reaches the database; the capability is handed
// out once.
func TestSealedStoreWritesOnlyThroughTheHolder(t *testing.T) {
	d := testdb.SQLite(t)
	a := newScheduler(t, d, fastConfig("A"), nil)
	a.SetAddress("http://a.example:8080")
	start(t, a)
	waitLeader(t, a)

	b := newScheduler(t, d, fastConfig("B"), nil)
	if err := b.OwnInventoryWrites(); err != nil {
		t.Fatal(err)
	}
	if err := b.OwnInventoryWrites(); !errors.Is(err, inventory.ErrSealed) {
		t.Fatalf("second seal: %v", err)
	}
	start(t, b)
	waitFor(t, "B to see A's lease", 5*time.Second, func() bool { l := b.seen.Load(); return l != nil && l.Holder == "A" })

	_, err := b.store.Write(context.Background(), time.Now(), addSite("T2_X"))
	var nw *inventory.NotWriterError
	if !errors.As(err, &nw) || !errors.Is(err, ErrNotLeader) || !errors.Is(err, inventory.ErrNotWriter) {
		t.Fatalf("standby write: %v", err)
	}
	if nw.Holder != "A" || nw.Address != "http://a.example:8080" || nw.RetryAfter < time.Second {
		t.Errorf("refusal %+v: want holder A, its address and a retry delay", nw)
	}
	if _, err := b.store.Inject(context.Background(), time.Now(), &inventory.InjectDoc{Sites: []inventory.InjectSite{{Name: "T2_Y"}}}); !errors.Is(err, inventory.ErrNotWriter) {
		t.Fatalf("standby inject: %v", err)
	}
	var n int
	if err := d.Get(&n, "SELECT COUNT(*) FROM sites"); err != nil || n != 0 {
		t.Fatalf("%d sites in the database after refused writes (%v)", n, err)
	}
}

// Workers run only while the lease is held: started at takeover, stopped
// before the holder steps down.
func TestWorkersFollowTheLease(t *testing.T) {
	d := testdb.SQLite(t)
	var running atomic.Int32
	w := Worker{Name: "w", Run: func(ctx context.Context) error {
		running.Add(1)
		defer running.Add(-1)
		<-ctx.Done()
		return nil
	}}
	a := newScheduler(t, d, fastConfig("A"), func(s *Scheduler) { _ = s.AddWorker(w) })
	b := newScheduler(t, d, fastConfig("B"), func(s *Scheduler) { _ = s.AddWorker(w) })
	ha := start(t, a)
	waitLeader(t, a)
	start(t, b)
	waitFor(t, "A's worker", 5*time.Second, func() bool { return running.Load() == 1 })
	// B tried for the lease and found A: its worker must not have started.
	waitFor(t, "B to see A's lease", 5*time.Second, func() bool { l := b.seen.Load(); return l != nil && l.Holder == "A" })
	if n := running.Load(); n != 1 {
		t.Fatalf("%d workers running with one holder", n)
	}
	ha.stop(t) // releases the lease after stopping A's worker
	waitLeader(t, b)
	waitFor(t, "B's worker", 5*time.Second, func() bool { return running.Load() == 1 })
}

// A writer behind the change log (another process wrote) catches up and
// retries once instead of failing.
func TestWriterCatchesUpAndRetries(t *testing.T) {
	d := testdb.SQLite(t)
	a := newScheduler(t, d, fastConfig("A"), nil)
	start(t, a)
	waitLeader(t, a)
	other := loadStore(t, d) // another process's view of the same database
	if _, err := other.Write(context.Background(), time.Now(), addSite("T2_OTHER")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(context.Background(), time.Now(), addSite("T2_MINE")); err != nil {
		t.Fatalf("write behind the change log: %v", err)
	}
	snap := a.store.Snapshot()
	for _, n := range []string{"T2_OTHER", "T2_MINE"} {
		if _, ok := snap.SiteByName(n); !ok {
			t.Errorf("%s missing after the catch-up", n)
		}
	}
}
