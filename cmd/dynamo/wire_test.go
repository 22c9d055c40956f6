package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

func TestRegistryRequestsForTheDealer(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		rs := registry.NewStore(d)
		req, _, err := rs.CreateRequest(ctx, registry.NewRequest{Kind: registry.KindCopy, Items: []string{"/A/B/C"},
			Sites: []string{"T2_A"}, Group: "AnalysisOps", N: 1, User: "alice"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		src := registryRequests{rs}
		open, err := src.OpenCopyRequests(ctx)
		if err != nil || len(open) != 1 || open[0].ID != req.ID || open[0].Items[0] != "/A/B/C" || open[0].Group != "AnalysisOps" {
			t.Fatalf("open requests %+v, %v", open, err)
		}
		up := []dealer.RequestUpdate{{ID: req.ID, Status: dealer.RequestActivated}}
		if err := src.UpdateCopyRequests(ctx, up); err != nil {
			t.Fatal(err)
		}
		// Idempotent: the Dealer may repeat an update after a partial failure.
		if err := src.UpdateCopyRequests(ctx, up); err != nil {
			t.Fatalf("repeated update: %v", err)
		}
		got, _ := rs.GetRequest(ctx, registry.KindCopy, req.ID)
		if got.Status != registry.StatusActivated {
			t.Fatalf("status %s, want activated", got.Status)
		}
		if err := src.UpdateCopyRequests(ctx, []dealer.RequestUpdate{{ID: req.ID, Status: dealer.RequestRejected, Reason: "no destination"}}); err != nil {
			t.Fatal(err)
		}
		if open, _ := src.OpenCopyRequests(ctx); len(open) != 0 {
			t.Fatalf("rejected request still open: %+v", open)
		}
	})
}

const wireDoc = `{
 "sites": [{"name": "T2_SRC", "storage_type": "disk", "status": "ready", "backend": "file:///src"},
           {"name": "T2_DST", "storage_type": "disk", "status": "ready", "backend": "file:///dst"}],
 "groups": [{"name": "AnalysisOps", "olevel": "dataset"}],
 "datasets": [{"name": "/A/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [
    {"name": "b1", "files": [{"lfn": "/store/a/1.root", "size": 10}, {"lfn": "/store/a/2.root", "size": 20}]}]},
   {"name": "/A/R-v2/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "c", "size": 1, "num_files": 1}]},
   {"name": "/B/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "d", "size": 1, "num_files": 1}]}],
 "dataset_replicas": [{"dataset": "/A/R-v1/AOD", "site": "T2_SRC", "group": "AnalysisOps"}]
}`

func TestFileopQueueForDealerAndDetox(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		store, err := inventory.Load(ctx, d, logging.Discard(), nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := inventory.DecodeInjectDoc(strings.NewReader(wireDoc))
		if _, err := store.Inject(ctx, time.Now(), doc); err != nil {
			t.Fatal(err)
		}
		snap := store.Snapshot()
		b1, _ := snap.BlockByName("/A/R-v1/AOD#b1")
		dst, _ := snap.SiteByName("T2_DST")
		ds, _ := snap.DatasetByName("/A/R-v1/AOD")
		grp, _ := snap.GroupByName("AnalysisOps")
		// The Dealer first writes the projected replica, then queues.
		if _, err := store.Write(ctx, time.Now(), func(tx *inventory.Txn) error {
			return tx.Add(inventory.UpsertDatasetReplica{DatasetReplica: inventory.DatasetReplica{Dataset: ds.ID, Site: dst.ID, Group: grp.ID}},
				inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: b1.ID, Site: dst.ID, Group: grp.ID}})
		}); err != nil {
			t.Fatal(err)
		}
		q := fileopQueue{store}
		tr := []dealer.BlockTransfer{{Block: b1.ID, BlockName: "/A/R-v1/AOD#b1", Destination: "T2_DST", Sources: []string{"T2_SRC"}}}
		for i := 0; i < 2; i++ { // idempotent
			if err := q.QueueTransfers(ctx, tr); err != nil {
				t.Fatal(err)
			}
		}
		count := func(op string) int {
			var n int
			if err := d.Get(&n, "SELECT COUNT(*) FROM fileop_subscriptions WHERE op = ? AND site_id = ? AND state NOT IN ('cancelled', 'done')", op, dst.ID); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count("transfer"); n != 2 {
			t.Fatalf("%d transfer subscriptions, want one per file (2)", n)
		}
		// Deleting the replica cancels the pending transfers.
		if err := q.QueueDeletions(ctx, []detox.FileDeletion{{Site: "T2_DST", Block: "/A/R-v1/AOD#b1", LFN: "/store/a/1.root"}}); err != nil {
			t.Fatal(err)
		}
		if n := count("transfer"); n != 0 {
			t.Errorf("%d transfers still pending after the replica's deletion", n)
		}
		if err := q.QueueTransfers(ctx, []dealer.BlockTransfer{{BlockName: "x#y", Destination: "T9_NOWHERE"}}); err == nil {
			t.Error("unknown destination accepted")
		}
	})
}

// TestRegistryLocksKeepTheirScope: Detox gets each active registry lock
// with its item, sites and groups intact (detox.Lock evaluates them; a
// group restriction dropped here would make Detox and the registry
// disagree about what a lock protects).
func TestRegistryLocksKeepTheirScope(t *testing.T) {
	d := testdb.SQLite(t)
	ctx := context.Background()
	rs := registry.NewStore(d)
	now := time.Now()
	for _, spec := range []registry.LockSpec{
		{Item: "/A/*/AOD", Expires: now.Add(time.Hour).Unix(), Sites: []string{"T2_SRC", "T2_DST"}, Groups: []string{"AnalysisOps"}},
		{Item: "/B/R-v1/AOD#d", Expires: now.Add(time.Hour).Unix()},
		{Item: "/B/R-v1/AOD", Expires: now.Add(-time.Hour).Unix()}, // expired
	} {
		if _, _, err := rs.AddLock(ctx, spec, "alice", "", now.Add(-2*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	locks, err := registryLocks{rs}.ActiveLocks(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, l := range locks {
		got[fmt.Sprintf("%s#%s@%v/%v", l.Dataset, l.Block, l.Sites, l.Groups)] = true
	}
	want := []string{"/A/*/AOD#@[T2_DST T2_SRC]/[AnalysisOps]", "/B/R-v1/AOD#d@[]/[]"}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing lock %s in %v", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("locks %v, want exactly %v (the expired one must not protect)", got, want)
	}
}
