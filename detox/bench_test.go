package detox

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
)

// BenchmarkPlanCycle plans a Physics.txt-shaped cycle on a synthetic
// inventory: 1 % of CMS scale by default (about 100,000 block replicas on
// 100 sites), generated into SQLite. The CMS-scale figure (10 M block
// replicas) comes from `dynamo bench detox` on a database holding
// `dynamo bench generate`'s full inventory (see docs/detox.md); set
// DYNAMO_BENCH_DETOX_SCALE=1 to run this benchmark at full scale (the
// generation takes minutes).
func BenchmarkPlanCycle(b *testing.B) {
	ctx := context.Background()
	spec := synth.CMS()
	scale := 0.01
	if os.Getenv("DYNAMO_BENCH_DETOX_SCALE") == "1" {
		scale = 1
	}
	spec.Datasets = max(int(float64(spec.Datasets)*scale), 100)
	d := testdb.SQLite(b)
	if _, err := synth.Generate(ctx, d, spec, nil); err != nil {
		b.Fatal(err)
	}
	store, err := inventory.Load(ctx, d, testLog(b), nil, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	pol, err := policy.LoadPolicy("testdata/policies/physics-default.txt", policy.PolicyOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var src Sources
	if err := src.FillEmpty(policy.ProducerLocks, policy.ProducerAccesses, policy.ProducerEnforcer, policy.ProducerTapeRequest,
		policy.ProducerUnhandledCopy, policy.ProducerProtectedSite); err != nil {
		b.Fatal(err)
	}
	snap := store.Snapshot()
	b.ResetTimer()
	var plan *Plan
	for i := 0; i < b.N; i++ {
		if plan, err = PlanCycle(ctx, snap, pol, PlanOptions{Sources: src}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(snap.Counts().BlockReplicas), "block_replicas")
	b.ReportMetric(float64(len(plan.Deletions)), "deletions")
}
