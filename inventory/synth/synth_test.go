package synth_test

import (
	"context"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
)

func TestGenerateLoadsAndIsDeterministic(t *testing.T) {
	spec := synth.CMS()
	spec.Sites, spec.Datasets = 20, 300
	var first synth.Stats
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		st, err := synth.Generate(context.Background(), d, spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if first.Blocks == 0 {
			first = st
		} else if st != first {
			t.Fatalf("same spec, different result: %+v vs %+v", st, first)
		}
		s, err := inventory.Load(context.Background(), d, logging.Discard(), nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c := s.Snapshot().Counts()
		if c.Sites != st.Sites || c.Datasets != st.Datasets || c.Blocks != st.Blocks || c.BlockReplicas != st.BlockReplicas || c.DatasetReplicas != st.DatasetReplicas {
			t.Fatalf("loaded %+v, generated %+v", c, st)
		}
		perBlock := float64(st.BlockReplicas) / float64(st.Blocks)
		if perBlock < 2.5 || perBlock > 4.5 {
			t.Errorf("replicas per block %.2f, want about %.2f", perBlock, spec.ReplicasPerBlock)
		}
		// Disk sites sit around the target occupancy.
		snap := s.Snapshot()
		part, _ := snap.PartitionByName("Default")
		for _, site := range snap.Sites() {
			u := snap.Usage(site.ID, part.ID)
			if site.StorageType != inventory.StorageDisk || u.Physical == 0 {
				continue
			}
			if f, _ := u.Fraction(); f < 0.5 || f > 1.2 {
				t.Errorf("%s occupancy %.2f, want near %.2f", site.Name, f, spec.TargetOccupancy)
			}
		}
		if _, err := synth.Generate(context.Background(), d, spec, nil); err == nil {
			t.Error("generating into a non-empty database was accepted")
		}
	})
}

// Building in memory gives the inventory that generating into the
// database and loading it gives: same counts, same occupancy per site, same
// datasets and replicas. The scaling benchmark relies on it to measure 10x
// CMS without writing 100 M rows first.
func TestBuildInMemoryMatchesGenerateAndLoad(t *testing.T) {
	spec := synth.CMS()
	spec.Sites, spec.Datasets = 15, 400
	ctx := context.Background()
	d := testdb.SQLite(t)
	if _, err := synth.Generate(ctx, d, spec, nil); err != nil {
		t.Fatal(err)
	}
	loaded, err := inventory.Load(ctx, d, logging.Discard(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	built, st, err := synth.Build(ctx, testdb.SQLite(t), logging.Discard(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := loaded.Snapshot(), built.Snapshot()
	if a.Counts() != b.Counts() {
		t.Fatalf("built %+v, loaded %+v", b.Counts(), a.Counts())
	}
	if c := b.Counts(); c.Datasets != st.Datasets || c.Blocks != st.Blocks || c.BlockReplicas != st.BlockReplicas {
		t.Fatalf("built %+v, generator counted %+v", c, st)
	}
	for _, site := range a.Sites() {
		for _, p := range a.Partitions() {
			if ua, ub := a.Usage(site.ID, p.ID), b.Usage(site.ID, p.ID); ua != ub {
				t.Errorf("%s/%s: loaded %+v, built %+v", site.Name, p.Name, ua, ub)
			}
		}
	}
	for ds := range a.Datasets() {
		ds2, ok := b.DatasetByName(ds.Name)
		if !ok || ds2 != ds {
			t.Fatalf("dataset %s: loaded %+v, built %+v", ds.Name, ds, ds2)
		}
		for blk := range a.Blocks(ds.ID) {
			n := 0
			for r := range a.BlockReplicas(blk.ID) {
				n++
				found := false
				for r2 := range b.BlockReplicas(blk.ID) {
					found = found || r2 == r
				}
				if !found {
					t.Fatalf("replica %+v not built", r)
				}
			}
			for range b.BlockReplicas(blk.ID) {
				n--
			}
			if n != 0 {
				t.Fatalf("block %s: replica counts differ", blk.Name)
			}
		}
	}
	if _, err := built.Write(ctx, time.Now(), func(*inventory.Txn) error { return nil }); err == nil {
		t.Error("a write to the in-memory inventory was accepted")
	}
}
