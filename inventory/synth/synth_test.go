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
