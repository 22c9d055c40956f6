package dealer_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

func applyWorld(t *testing.T, d *db.DB) *inventory.Store {
	t.Helper()
	ctx := context.Background()
	store, err := inventory.Load(ctx, d, logging.Discard(), nil, scenarioNow)
	if err != nil {
		t.Fatal(err)
	}
	doc := &inventory.InjectDoc{
		Sites: []inventory.InjectSite{
			{Name: "T2_A", StorageType: inventory.StorageDisk, Status: inventory.SiteReady, Quotas: map[string]int64{"Default": 100e12}},
			{Name: "T2_B", StorageType: inventory.StorageDisk, Status: inventory.SiteReady, Quotas: map[string]int64{"Default": 100e12}},
			{Name: "T1_TAPE", StorageType: inventory.StorageMSS, Status: inventory.SiteReady}},
		Groups: []inventory.InjectGroup{{Name: "AnalysisOps"}},
		Datasets: []inventory.InjectDataset{{Name: "/A/R/AOD", Status: inventory.DatasetValid, Blocks: []inventory.InjectBlock{
			{Name: "b0", Files: []inventory.InjectFile{{LFN: "/store/a/0.root", Size: 4e11}, {LFN: "/store/a/1.root", Size: 6e11}}}}}},
		DatasetReplicas: []inventory.InjectDatasetReplica{{Dataset: "/A/R/AOD", Site: "T1_TAPE", Group: "AnalysisOps"}},
	}
	if _, err := store.Inject(ctx, scenarioNow, doc); err != nil {
		t.Fatal(err)
	}
	return store
}

func newTestDealer(t *testing.T, d *db.DB, reqs *dealer.MemRequests, xf *dealer.MemTransfers) *dealer.Dealer {
	t.Helper()
	cfg := dealer.DefaultConfig()
	cfg.MaxPendingFraction = 1
	dl, err := dealer.New(cfg, dealer.Deps{Requests: reqs, Transfers: xf, History: dealer.NewHistory(d)}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return dl
}

// TestApplyTransfersCarryFilesAndSources checks the file-level work handed
// to the file-operation daemon.
func TestApplyTransfersCarryFilesAndSources(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		store := applyWorld(t, d)
		xf := &dealer.MemTransfers{}
		reqs := dealer.NewMemRequests(dealer.CopyRequest{ID: 5, Status: dealer.RequestNew, Items: []string{"/A/R/AOD"}, Sites: []string{"T2_A"}})
		dl := newTestDealer(t, d, reqs, xf)
		plan, err := dl.Plan(ctx, store.Snapshot(), dealer.PlanOptions{Seed: 3, Now: scenarioNow})
		if err != nil {
			t.Fatal(err)
		}
		res, err := dl.Apply(ctx, store, plan, dealer.ApplyOptions{At: scenarioNow})
		if err != nil {
			t.Fatal(err)
		}
		if res.Replicas != 1 || res.Transfers != 1 || len(xf.Queued) != 1 {
			t.Fatalf("result %+v, queued %d", res, len(xf.Queued))
		}
		tr := xf.Queued[0]
		if tr.BlockName != "/A/R/AOD#b0" || tr.Destination != "T2_A" || len(tr.Sources) != 1 || tr.Sources[0] != "T1_TAPE" ||
			len(tr.Files) != 2 || tr.Files[0].LFN != "/store/a/0.root" || tr.Cycle != res.CycleID {
			t.Fatalf("transfer %+v", tr)
		}
		// The projected replica counts in the projected occupancy.
		snap := store.Snapshot()
		site, _ := snap.SiteByName("T2_A")
		part, _ := snap.PartitionByName("Default")
		if u := snap.Usage(site.ID, part.ID); u.Projected != 1e12 || u.Physical != 0 {
			t.Fatalf("usage after apply: %+v", u)
		}
		cy, err := dealer.NewHistory(d).Cycle(ctx, res.CycleID)
		if err != nil || cy.Status != dealer.CycleApplied {
			t.Fatalf("cycle %+v %v", cy, err)
		}
		if r, _ := reqs.Request(5); r.Status != dealer.RequestActivated {
			t.Fatalf("request status %s", r.Status)
		}
	})
}

// TestApplyRechecksAgainstCurrentInventory: a plan made before a site
// lost its quota or left the ready state is not applied to it.
func TestApplyRechecksAgainstCurrentInventory(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		store := applyWorld(t, d)
		reqs := dealer.NewMemRequests(dealer.CopyRequest{ID: 1, Status: dealer.RequestNew, Items: []string{"/A/R/AOD"}, Sites: []string{"T2_A", "T2_B"}})
		xf := &dealer.MemTransfers{}
		dl := newTestDealer(t, d, reqs, xf)
		plan, err := dl.Plan(ctx, store.Snapshot(), dealer.PlanOptions{Seed: 3, Now: scenarioNow})
		if err != nil || len(plan.Copies) != 2 {
			t.Fatalf("plan: %v, %d copies", err, len(plan.Copies))
		}
		snap := store.Snapshot()
		a, _ := snap.SiteByName("T2_A")
		b, _ := snap.SiteByName("T2_B")
		part, _ := snap.PartitionByName("Default")
		if _, err := store.Write(ctx, scenarioNow, func(t *inventory.Txn) error {
			a.Status = inventory.SiteMorgue
			if err := t.Add(inventory.UpsertSite{Site: a}); err != nil {
				return err
			}
			return t.Add(inventory.SetQuota{Site: b.ID, Partition: part.ID, Bytes: 5e11})
		}); err != nil {
			t.Fatal(err)
		}
		res, err := dl.Apply(ctx, store, plan, dealer.ApplyOptions{At: scenarioNow})
		if err != nil {
			t.Fatal(err)
		}
		if res.Copies != 0 || len(res.Skipped) != 2 || res.Skipped[0].Reason != dealer.ReasonStale || len(xf.Queued) != 0 {
			t.Fatalf("result %+v", res)
		}
	})
}

// TestApplyTransferFailureMarksCycleFailed: the projected replicas stay,
// the error is returned and recorded, and re-queueing is safe.
func TestApplyTransferFailureMarksCycleFailed(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		store := applyWorld(t, d)
		boom := errors.New("fileop down")
		xf := &dealer.MemTransfers{Fail: boom}
		reqs := dealer.NewMemRequests(dealer.CopyRequest{ID: 1, Status: dealer.RequestNew, Items: []string{"/A/R/AOD"}, Sites: []string{"T2_A"}})
		dl := newTestDealer(t, d, reqs, xf)
		plan, err := dl.Plan(ctx, store.Snapshot(), dealer.PlanOptions{Seed: 3, Now: scenarioNow})
		if err != nil {
			t.Fatal(err)
		}
		res, err := dl.Apply(ctx, store, plan, dealer.ApplyOptions{At: scenarioNow})
		if !errors.Is(err, boom) {
			t.Fatalf("apply error %v", err)
		}
		cy, herr := dealer.NewHistory(d).Cycle(ctx, res.CycleID)
		if herr != nil || cy.Status != dealer.CycleFailed || cy.Error == "" {
			t.Fatalf("cycle %+v %v", cy, herr)
		}
		if r, _ := reqs.Request(1); r.Status != dealer.RequestNew {
			t.Fatalf("request updated despite failure: %s", r.Status)
		}
		// The file-operation side is back: the cycle's transfers are queued
		// again from the history and the inventory; the cycle is then
		// applied and cannot be requeued twice.
		xf.Fail = nil
		if n, err := dl.RequeueCycle(ctx, dealer.StoreTarget(store, scenarioNow), res.CycleID); n != 1 || err != nil {
			t.Fatalf("requeue: %d %v", n, err)
		}
		if n, err := dl.RequeueCycle(ctx, dealer.StoreTarget(store, scenarioNow), res.CycleID); n != 0 || err == nil {
			t.Fatalf("second requeue of an applied cycle: %d %v", n, err)
		}
		if len(xf.Queued) != 1 || xf.Queued[0].BlockName != "/A/R/AOD#b0" || len(xf.Queued[0].Files) != 2 || xf.Queued[0].Sources[0] != "T1_TAPE" {
			t.Fatalf("requeued %+v", xf.Queued)
		}
		if cy, _ := dealer.NewHistory(d).Cycle(ctx, res.CycleID); cy.Status != dealer.CycleApplied {
			t.Fatalf("cycle after requeue: %s", cy.Status)
		}
	})
}

// TestApplyWithoutTransferQueueRefuses: replicas that nothing would fill
// are never created.
func TestApplyWithoutTransferQueueRefuses(t *testing.T) {
	ctx := context.Background()
	d := testdb.SQLite(t)
	store := applyWorld(t, d)
	reqs := dealer.NewMemRequests(dealer.CopyRequest{ID: 1, Status: dealer.RequestNew, Items: []string{"/A/R/AOD"}, Sites: []string{"T2_A"}})
	dl, err := dealer.New(dealer.DefaultConfig(), dealer.Deps{Requests: reqs, History: dealer.NewHistory(d)}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	plan, err := dl.Plan(ctx, store.Snapshot(), dealer.PlanOptions{Seed: 1, Now: scenarioNow})
	if err != nil || len(plan.Copies) != 1 {
		t.Fatalf("plan: %v", err)
	}
	seq := store.Seq()
	if _, err := dl.Apply(ctx, store, plan, dealer.ApplyOptions{At: scenarioNow}); !errors.Is(err, dealer.ErrNoTransferQueue) {
		t.Fatalf("apply: %v", err)
	}
	if store.Seq() != seq {
		t.Fatal("inventory changed")
	}
}
