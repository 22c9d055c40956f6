package dealer_test

import (
	"context"
	"testing"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
)

// BenchmarkPlanSmallSynthetic plans a cycle with 1,000 synthetic requests on
// a small synthetic inventory (the CMS-scale figure comes from `dynamo bench
// dealer`, which needs the large database).
func BenchmarkPlanSmallSynthetic(b *testing.B) {
	ctx := context.Background()
	d := testdb.SQLite(b)
	spec := synth.CMS()
	spec.Datasets, spec.Sites = 3000, 40
	if _, err := synth.Generate(ctx, d, spec, nil); err != nil {
		b.Fatal(err)
	}
	store, err := inventory.Load(ctx, d, logging.Discard(), nil, scenarioNow)
	if err != nil {
		b.Fatal(err)
	}
	snap := store.Snapshot()
	in := dealer.SyntheticInputs(snap, 1000, 1, scenarioNow)
	dl, err := dealer.New(dealer.DefaultConfig(), dealer.Deps{}, logging.Discard())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var plan *dealer.Plan
	for b.Loop() {
		if plan, err = dl.PlanWith(snap, in, dealer.PlanOptions{Seed: 1, Now: scenarioNow}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(plan.Proposals)), "proposals")
	b.ReportMetric(float64(len(plan.Copies)), "copies")
}
