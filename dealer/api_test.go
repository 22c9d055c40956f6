package dealer_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// TestHistoryAndREST records a dry-run cycle and reads it back through the
// REST API, on both dialects.
func TestHistoryAndREST(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		store, err := inventory.Load(ctx, d, logging.Discard(), nil, scenarioNow)
		if err != nil {
			t.Fatal(err)
		}
		one, two := int64(1e12), int32(2)
		doc := &inventory.InjectDoc{
			Sites: []inventory.InjectSite{{Name: "T2_A", StorageType: inventory.StorageDisk, Status: inventory.SiteReady, Quotas: map[string]int64{"Default": 100e12}},
				{Name: "T1_TAPE", StorageType: inventory.StorageMSS, Status: inventory.SiteReady}},
			Groups: []inventory.InjectGroup{{Name: "AnalysisOps"}},
			Datasets: []inventory.InjectDataset{
				{Name: "/A/R/AOD", Status: inventory.DatasetValid, Blocks: []inventory.InjectBlock{{Name: "b0", Size: &one, NumFiles: &two}}},
				{Name: "/B/R/AOD", Status: inventory.DatasetValid, Blocks: []inventory.InjectBlock{{Name: "b0", Size: &one, NumFiles: &two}}}},
			DatasetReplicas: []inventory.InjectDatasetReplica{{Dataset: "/A/R/AOD", Site: "T1_TAPE", Group: "AnalysisOps"}},
		}
		if _, err := store.Inject(ctx, scenarioNow, doc); err != nil {
			t.Fatal(err)
		}
		h := dealer.NewHistory(d)
		reqs := dealer.NewMemRequests(
			dealer.CopyRequest{ID: 1, Status: dealer.RequestNew, N: 1, Items: []string{"/A/R/AOD"}, Sites: []string{"T2_A"}},
			dealer.CopyRequest{ID: 2, Status: dealer.RequestNew, N: 1, Items: []string{"/B/R/AOD"}, Sites: []string{"T2_A"}})
		dl, err := dealer.New(dealer.DefaultConfig(), dealer.Deps{Requests: reqs, History: h}, logging.Discard())
		if err != nil {
			t.Fatal(err)
		}
		plan, err := dl.Plan(ctx, store.Snapshot(), dealer.PlanOptions{Seed: 7, Now: scenarioNow})
		if err != nil {
			t.Fatal(err)
		}
		res, err := dl.Apply(ctx, store, plan, dealer.ApplyOptions{DryRun: true, At: scenarioNow})
		if err != nil || res.CycleID == 0 {
			t.Fatalf("dry run: %+v %v", res, err)
		}
		if _, ok := store.Snapshot().BlockByName("/A/R/AOD#b0"); !ok {
			t.Fatal("inventory lost a block")
		}
		if b, _ := store.Snapshot().BlockByName("/A/R/AOD#b0"); true {
			site, _ := store.Snapshot().SiteByName("T2_A")
			if _, ok := store.Snapshot().BlockReplica(b.ID, site.ID); ok {
				t.Fatal("dry run created a replica")
			}
		}

		gin.SetMode(gin.TestMode)
		r := gin.New()
		r.Use(apierr.Middleware(nil, 0))
		dealer.Routes(r.Group("/api/v1/dealer"), h)
		get := func(path string, wantStatus int, into any) {
			t.Helper()
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			if w.Code != wantStatus {
				t.Fatalf("GET %s: %d %s, want %d", path, w.Code, w.Body, wantStatus)
			}
			if into != nil {
				if err := json.Unmarshal(w.Body.Bytes(), into); err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
			}
		}
		var cycles struct{ Cycles []dealer.CycleRecord }
		get("/api/v1/dealer/cycles", 200, &cycles)
		if len(cycles.Cycles) != 1 || cycles.Cycles[0].Seed != "7" || !cycles.Cycles[0].DryRun || cycles.Cycles[0].NumCopies != 1 || cycles.Cycles[0].NumRejections != 1 {
			t.Fatalf("cycles: %+v", cycles)
		}
		var cy dealer.CycleRecord
		get("/api/v1/dealer/cycles/1", 200, &cy)
		var cfg dealer.Config
		if err := json.Unmarshal(cy.Config, &cfg); err != nil || cfg.TargetOccupancy != 0.93 {
			t.Fatalf("recorded config: %s %v", cy.Config, err)
		}
		var props struct{ Proposals []dealer.ProposalRecord }
		get("/api/v1/dealer/cycles/1/proposals", 200, &props)
		if len(props.Proposals) != 2 || !props.Proposals[0].Accepted || props.Proposals[0].Site != "T2_A" || props.Proposals[0].RequestID != 1 {
			t.Fatalf("proposals: %+v", props)
		}
		get("/api/v1/dealer/cycles/1/rejections?reason=no+source", 200, &props)
		if len(props.Proposals) != 1 || props.Proposals[0].Item != "/B/R/AOD" || props.Proposals[0].Reason != string(dealer.ReasonNoSource) {
			t.Fatalf("rejections: %+v", props)
		}
		var reasons struct{ Reasons map[string]int }
		get("/api/v1/dealer/cycles/1/reasons", 200, &reasons)
		if reasons.Reasons[string(dealer.ReasonNoSource)] != 1 || len(reasons.Reasons) != 1 {
			t.Fatalf("reasons: %+v", reasons)
		}
		get("/api/v1/dealer/cycles/99", 404, nil)
		get("/api/v1/dealer/cycles/99/proposals", 404, nil)
		get("/api/v1/dealer/cycles/x", 400, nil)
		get("/api/v1/dealer/cycles?limit=0", 400, nil)
		get("/api/v1/dealer/reasons", 200, nil)
	})
}
