package main

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/scheduler"
)

// The Dealer runs as the scheduler's writer application: a run creates
// the projected replicas under the scheduler's lease, queues the transfers
// and records an applied cycle; a read-only run records a dry run only.
func TestDealerAsSchedulerWriter(t *testing.T) {
	ctx := context.Background()
	d := testdb.SQLite(t)
	store, err := inventory.Load(ctx, d, logging.Discard(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	size, nf := int64(1e11), int32(1)
	if _, err := store.Inject(ctx, time.Now(), &inventory.InjectDoc{
		Sites: []inventory.InjectSite{
			{Name: "T2_A", StorageType: inventory.StorageDisk, Status: inventory.SiteReady, Quotas: map[string]int64{"Default": 100e12}},
			{Name: "T1_TAPE", StorageType: inventory.StorageMSS, Status: inventory.SiteReady}},
		Groups:          []inventory.InjectGroup{{Name: "AnalysisOps"}},
		Datasets:        []inventory.InjectDataset{{Name: "/A/R/AOD", Status: inventory.DatasetValid, Blocks: []inventory.InjectBlock{{Name: "b0", Size: &size, NumFiles: &nf}}}},
		DatasetReplicas: []inventory.InjectDatasetReplica{{Dataset: "/A/R/AOD", Site: "T1_TAPE", Group: "AnalysisOps"}},
	}); err != nil {
		t.Fatal(err)
	}
	reqs := dealer.NewMemRequests(dealer.CopyRequest{ID: 1, Status: dealer.RequestNew, Items: []string{"/A/R/AOD"}, Sites: []string{"T2_A"}})
	xf := &dealer.MemTransfers{}
	h := dealer.NewHistory(d)
	dl, err := dealer.New(dealer.DefaultConfig(), dealer.Deps{Requests: reqs, Transfers: xf, History: h}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	cfg := scheduler.Config{ServerID: "t", LeasePeriod: time.Second, Heartbeat: 100 * time.Millisecond,
		Grace: 2 * time.Second, RetryDelay: 10 * time.Millisecond,
		DefaultTimeout: 30 * time.Second, MaxReaders: 2}
	sch, err := scheduler.New(cfg, store, logging.Discard(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Register(dealerApp(dl, store)); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sch.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(5 * time.Second); !sch.Leader(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no writer lease")
		}
	}

	r, err := sch.RunNow(ctx, scheduler.RunRequest{App: "dealer", ReadOnly: true, Wait: true})
	if err != nil || r.Status != scheduler.StatusOK {
		t.Fatalf("read-only run: %+v %v", r, err)
	}
	cycles, err := h.Cycles(ctx, 10, 0)
	if err != nil || len(cycles) != 1 || cycles[0].Status != dealer.CycleDryRun || cycles[0].NumCopies != 1 {
		t.Fatalf("after the read-only run: %+v %v", cycles, err)
	}
	if len(xf.Queued) != 0 {
		t.Fatal("read-only run queued transfers")
	}

	r, err = sch.RunNow(ctx, scheduler.RunRequest{App: "dealer", Wait: true})
	if err != nil || r.Status != scheduler.StatusOK || r.Updates == 0 {
		t.Fatalf("writer run: %+v %v", r, err)
	}
	snap := store.Snapshot()
	b, _ := snap.BlockByName("/A/R/AOD#b0")
	site, _ := snap.SiteByName("T2_A")
	if rep, ok := snap.BlockReplica(b.ID, site.ID); !ok || rep.Complete {
		t.Fatalf("projected replica: %+v %v", rep, ok)
	}
	cycles, _ = h.Cycles(ctx, 10, 0)
	if len(cycles) != 2 || cycles[0].Status != dealer.CycleApplied || len(xf.Queued) != 1 {
		t.Fatalf("after the writer run: %+v, %d transfers", cycles, len(xf.Queued))
	}
	if rq, _ := reqs.Request(1); rq.Status != dealer.RequestActivated {
		t.Fatalf("request %s", rq.Status)
	}
}
