package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
)

// The scaling benchmark at a small size: its inventory is the one the
// generator writes to a database (counts, load check), and its Detox and
// Dealer cycles find what the same cycles find on that database's
// inventory, computed directly.
func TestBenchScaleInvariantsAtSmallSize(t *testing.T) {
	ctx := context.Background()
	const k = 0.004 // 10 sites, 1,200 datasets
	spec := ScaleSpec(k, 7)
	d := testdb.SQLite(t)
	st, err := synth.Generate(ctx, d, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	dcfg := dealer.DefaultConfig()
	o := ScaleOptions{Sizes: []float64{k}, Steps: []string{"load", "detox", "dealer", "rest"}, Seed: 7,
		LoadDB: map[string]string{"0.004": "sqlite:" + d.Name[len("sqlite:"):]}, PolicyFile: "../detox/testdata/policies/physics-default.txt",
		Partition: "Default", Requests: 50, Rate: 50, RESTDuration: 500 * time.Millisecond, WorkDir: t.TempDir(), Dealer: dcfg}
	rep, err := Scale(ctx, o, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rep.Rows))
	}
	row := rep.Rows[0]
	if row.Sites != st.Sites || row.Datasets != st.Datasets || row.Blocks != st.Blocks || row.BlockReplicas != st.BlockReplicas || row.DSReplicas != st.DatasetReplicas {
		t.Errorf("benchmark inventory %+v, generator wrote %+v", row, st)
	}
	if row.LoadSeconds == nil || row.DetoxSeconds == nil || row.DealerSeconds == nil || row.RESTP99 == nil {
		t.Fatalf("a step did not run: %+v", row)
	}
	if row.HeapBytes <= 0 || row.BytesPerObject <= 0 || row.RESTErrors != 0 || row.RESTCycles < 1 {
		t.Errorf("memory %d B (%.1f B/object), %d REST errors, %d Detox cycles during REST", row.HeapBytes, row.BytesPerObject, row.RESTErrors, row.RESTCycles)
	}

	// The same cycles, computed directly on the database's inventory.
	store, err := inventory.Load(ctx, d, logging.Discard(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	snap := store.Snapshot()
	pol, err := policy.LoadPolicy(o.PolicyFile, policy.PolicyOptions{Partition: "Default"})
	if err != nil {
		t.Fatal(err)
	}
	var src detox.Sources
	if err := src.FillEmpty(AllProducers()...); err != nil {
		t.Fatal(err)
	}
	plan, err := detox.PlanCycle(ctx, snap, pol, detox.PlanOptions{Sources: src})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Deletions) == 0 {
		t.Fatal("the small inventory gives Detox nothing to delete: the comparison would prove nothing")
	}
	if row.DetoxDeletions != len(plan.Deletions) || row.DetoxDeleted != plan.DeletedBytes() || row.DetoxDecisions != len(plan.Replicas) {
		t.Errorf("benchmark Detox: %d deletions, %d bytes, %d decisions; direct: %d, %d, %d",
			row.DetoxDeletions, row.DetoxDeleted, row.DetoxDecisions, len(plan.Deletions), plan.DeletedBytes(), len(plan.Replicas))
	}
	now := time.Unix(1_760_000_000, 0)
	in := dealer.SyntheticInputs(snap, o.Requests, o.Seed, now)
	dl, err := dealer.New(dcfg, dealer.Deps{Requests: dealer.NewMemRequests(in.Requests...),
		Accesses: dealer.MemAccesses(in.Accesses), Protection: dealer.MemProtection{P: in.Protection}}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	dp, err := dl.Plan(ctx, snap, dealer.PlanOptions{Seed: o.Seed, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(dp.Copies) == 0 {
		t.Fatal("the Dealer places nothing: the comparison would prove nothing")
	}
	if row.DealerRequests != len(in.Requests) || row.DealerCopies != len(dp.Copies) {
		t.Errorf("benchmark Dealer: %d requests, %d copies; direct: %d, %d", row.DealerRequests, row.DealerCopies, len(in.Requests), len(dp.Copies))
	}
	name, reps, files := LargestSite(snap)
	if row.LargestSite != name || row.LargestSiteRep != reps || row.LargestSiteFile != files {
		t.Errorf("largest site %s (%d replicas, %d files), direct %s (%d, %d)", row.LargestSite, row.LargestSiteRep, row.LargestSiteFile, name, reps, files)
	}

	var out strings.Builder
	PrintScaleTable(&out, rep)
	if !strings.Contains(out.String(), "blk_replicas") || strings.Count(out.String(), "\n") < 2 {
		t.Errorf("table:\n%s", out.String())
	}
}

// A database generated with another spec is not a load figure for this
// size: the benchmark says so instead of reporting it.
func TestBenchScaleRefusesAMismatchedLoadDatabase(t *testing.T) {
	ctx := context.Background()
	d := testdb.SQLite(t)
	if _, err := synth.Generate(ctx, d, ScaleSpec(0.002, 1), nil); err != nil {
		t.Fatal(err)
	}
	o := ScaleOptions{Sizes: []float64{0.004}, Steps: []string{"load"}, Seed: 1,
		LoadDB: map[string]string{"0.004": "sqlite:" + d.Name[len("sqlite:"):]}, WorkDir: t.TempDir()}
	_, err := Scale(ctx, o, logging.Discard())
	if err == nil || !strings.Contains(err.Error(), "same spec") {
		t.Fatalf("err = %v, want a spec mismatch", err)
	}
}

// A database of the same spec in which values differ (one replica's time,
// one block's name, one dataset's status) but every count matches is not
// a load figure either: the loaded inventory must be the built one.
func TestBenchScaleRefusesALoadDatabaseWithOtherValues(t *testing.T) {
	for name, edit := range map[string]string{
		"replica time":   "UPDATE block_replicas SET last_update = last_update + 1 WHERE block_id = (SELECT MIN(block_id) FROM block_replicas)",
		"block name":     "UPDATE blocks SET name = name || 'x' WHERE id = (SELECT MIN(id) FROM blocks)",
		"dataset status": "UPDATE datasets SET status = CASE status WHEN 'valid' THEN 'deprecated' ELSE 'valid' END WHERE id = (SELECT MIN(id) FROM datasets)",
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d := testdb.SQLite(t)
			if _, err := synth.Generate(ctx, d, ScaleSpec(0.004, 1), nil); err != nil {
				t.Fatal(err)
			}
			if _, err := d.ExecContext(ctx, edit); err != nil {
				t.Fatal(err)
			}
			o := ScaleOptions{Sizes: []float64{0.004}, Steps: []string{"load"}, Seed: 1,
				LoadDB: map[string]string{"0.004": "sqlite:" + d.Name[len("sqlite:"):]}, WorkDir: t.TempDir()}
			_, err := Scale(ctx, o, logging.Discard())
			if err == nil || !strings.Contains(err.Error(), "differs from the built one") {
				t.Fatalf("err = %v, want the loaded inventory refused", err)
			}
		})
	}
}
