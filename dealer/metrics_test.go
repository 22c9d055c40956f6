package dealer_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// Cycle metrics count a dry run, an applied cycle and a failed one, the
// accepted proposals and the bytes placed at the destination.
func TestCycleMetrics(t *testing.T) {
	ctx := context.Background()
	d := testdb.SQLite(t)
	store := applyWorld(t, d)
	reg := prometheus.NewRegistry()
	m, err := dealer.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	xf := &dealer.MemTransfers{}
	reqs := dealer.NewMemRequests(dealer.CopyRequest{ID: 5, Status: dealer.RequestNew, Items: []string{"/A/R/AOD"}, Sites: []string{"T2_A"}})
	cfg := dealer.DefaultConfig()
	cfg.MaxPendingFraction = 1
	dl, err := dealer.New(cfg, dealer.Deps{Requests: reqs, Transfers: xf, History: dealer.NewHistory(d), Metrics: m}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	plan, err := dl.Plan(ctx, store.Snapshot(), dealer.PlanOptions{Seed: 3, Now: scenarioNow})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dl.Apply(ctx, store, plan, dealer.ApplyOptions{DryRun: true, At: scenarioNow}); err != nil {
		t.Fatal(err)
	}
	if _, err := dl.Apply(ctx, store, plan, dealer.ApplyOptions{At: scenarioNow}); err != nil {
		t.Fatal(err)
	}
	part := plan.Partition
	for status, want := range map[string]float64{dealer.CycleDryRun: 1, dealer.CycleApplied: 1, dealer.CycleFailed: 0} {
		if got := testutil.ToFloat64(m.CyclesForTest(part, status)); got != want {
			t.Fatalf("cycles %s = %v, want %v", status, got, want)
		}
	}
	if got := testutil.ToFloat64(m.PlacedForTest(part, "T2_A")); got != 1e12 {
		t.Fatalf("placed bytes at T2_A = %v, want 1e12 (the dry run not counted)", got)
	}
	if got := testutil.ToFloat64(m.DecisionsForTest(part, "accepted", "")); got != 2 {
		t.Fatalf("accepted decisions = %v, want 2 (one per cycle)", got)
	}

	// A cycle whose transfers cannot be queued counts as failed.
	reqs2 := dealer.NewMemRequests(dealer.CopyRequest{ID: 6, Status: dealer.RequestNew, Items: []string{"/A/R/AOD"}, Sites: []string{"T2_B"}})
	xf.Fail = errors.New("fileop down")
	dl2, err := dealer.New(cfg, dealer.Deps{Requests: reqs2, Transfers: xf, History: dealer.NewHistory(d), Metrics: m}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	plan, err = dl2.Plan(ctx, store.Snapshot(), dealer.PlanOptions{Seed: 3, Now: scenarioNow})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dl2.Apply(ctx, store, plan, dealer.ApplyOptions{At: scenarioNow}); err == nil {
		t.Fatal("apply with a failing queue succeeded")
	}
	if got := testutil.ToFloat64(m.CyclesForTest(part, dealer.CycleFailed)); got != 1 {
		t.Fatalf("failed cycles = %v, want 1", got)
	}
}
