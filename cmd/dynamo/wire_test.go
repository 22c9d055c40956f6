package main

import (
	"context"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
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
