package inventory_test

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"testing"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
)

func sortedReplicas(seq iter.Seq[inventory.BlockReplica]) []inventory.BlockReplica {
	out := slices.Collect(seq)
	slices.SortFunc(out, func(a, b inventory.BlockReplica) int { return cmp.Compare(a.Block, b.Block) })
	return out
}

// sameAsSiteIndex checks that the site index lists exactly what the
// snapshot's per-site lists hold, for every site and partition.
func sameAsSiteIndex(t *testing.T, snap *inventory.Snapshot) {
	t.Helper()
	x := snap.SiteIndex()
	parts := []inventory.PartitionID{0}
	for _, p := range snap.Partitions() {
		parts = append(parts, p.ID)
	}
	for _, site := range snap.Sites() {
		for _, p := range parts {
			want := sortedReplicas(snap.BlockReplicasInPartition(site.ID, p))
			got := sortedReplicas(x.BlockReplicasInPartition(site.ID, p))
			if !slices.Equal(got, want) {
				t.Errorf("%s partition %d: site index lists %d block replicas, the site list %d (or they differ)", site.Name, p, len(got), len(want))
			}
		}
		byDS := func(a, b inventory.DatasetReplica) int { return cmp.Compare(a.Dataset, b.Dataset) }
		want := slices.SortedFunc(snap.DatasetReplicasAtSite(site.ID), byDS)
		got := slices.SortedFunc(x.DatasetReplicasAtSite(site.ID), byDS)
		if !slices.Equal(got, want) {
			t.Errorf("%s: site index lists %d dataset replicas, the site list %d (or they differ)", site.Name, len(got), len(want))
		}
	}
	sameAsScans(t, snap, parts)
	for _, bad := range []inventory.SiteID{-1, 0, 1 << 14} {
		for range x.BlockReplicasAtSite(bad) {
			t.Errorf("site %d does not exist but the index yields a replica there", bad)
		}
	}
}

// TestSiteIndexAfterDeletionsAndReuse: replicas deleted free their slots
// and new ones take them, so slot order differs from insertion order; the
// index still lists each site's replicas exactly.
func TestSiteIndexAfterDeletionsAndReuse(t *testing.T) {
	ctx := context.Background()
	spec := synth.CMS()
	spec.Sites, spec.Datasets = 12, 300
	d := testdb.SQLite(t)
	if _, err := synth.Generate(ctx, d, spec, nil); err != nil {
		t.Fatal(err)
	}
	s := load(t, d)
	snap := s.Snapshot()
	sameAsSiteIndex(t, snap)
	sites := snap.Sites()
	var gone []inventory.BlockReplica
	i := 0
	for _, site := range sites {
		for r := range snap.BlockReplicasAtSite(site.ID) {
			if i%3 == 0 {
				gone = append(gone, r)
			}
			i++
		}
	}
	if len(gone) < 100 {
		t.Fatalf("only %d replicas to delete: the inventory is too small to test reuse", len(gone))
	}
	if _, err := s.Write(ctx, t0, func(tx *inventory.Txn) error {
		for _, r := range gone {
			if err := tx.Add(inventory.DeleteBlockReplica{Block: r.Block, Site: r.Site}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sameAsSiteIndex(t, s.Snapshot())
	// Put half of them back: they take the freed slots, last freed first,
	// so a site's slots no longer follow its list.
	if _, err := s.Write(ctx, t0, func(tx *inventory.Txn) error {
		for _, r := range gone[:len(gone)/2] {
			if err := tx.Add(inventory.UpsertBlockReplica{BlockReplica: r}); err != nil {
				return fmt.Errorf("re-add %d at %d: %w", r.Block, r.Site, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after := s.Snapshot()
	sameAsSiteIndex(t, after)
	// The old snapshot's index is unaffected by the writes.
	sameAsSiteIndex(t, snap)
}

// sameAsScans checks that the slot-order scans, split in three ranges,
// yield every block replica, dataset replica and block exactly once,
// with what the per-site and per-dataset lists say of them.
func sameAsScans(t *testing.T, snap *inventory.Snapshot, parts []inventory.PartitionID) {
	t.Helper()
	type member struct {
		inventory.BlockReplica
		part inventory.PartitionID
	}
	byKey := func(a, b member) int {
		return cmp.Or(cmp.Compare(a.Site, b.Site), cmp.Compare(a.Block, b.Block), cmp.Compare(a.part, b.part))
	}
	var want, got []member
	for _, site := range snap.Sites() {
		for _, p := range parts {
			for r := range snap.BlockReplicasInPartition(site.ID, p) {
				want = append(want, member{r, p})
			}
		}
	}
	n := snap.ReplicaSlots()
	for _, rg := range [][2]int32{{0, n / 3}, {n / 3, 2 * n / 3}, {2 * n / 3, n + 5}} {
		snap.ScanReplicas(rg[0], rg[1], func(r *inventory.ReplicaScan) {
			size, files := r.Present()
			v := inventory.BlockReplica{Block: r.Block, Site: r.Site, Group: r.Group, LastUpdate: r.LastUpdate, Size: size,
				NumFiles: files, Complete: r.Complete, Suspicious: r.Suspicious, PendingDeletion: r.PendingDeletion}
			full, _ := snap.BlockReplica(r.Block, r.Site)
			v.Custodial = full.Custodial // not part of a scan
			for _, p := range parts {
				if p == 0 || r.InPartition(p) {
					got = append(got, member{v, p})
				}
			}
		})
	}
	slices.SortFunc(want, byKey)
	slices.SortFunc(got, byKey)
	if !slices.Equal(got, want) {
		t.Errorf("replica scans yield %d (replica, partition) pairs, the site lists %d (or they differ)", len(got), len(want))
	}
	byDS := func(a, b inventory.DatasetReplica) int {
		return cmp.Or(cmp.Compare(a.Dataset, b.Dataset), cmp.Compare(a.Site, b.Site))
	}
	var wantDS, gotDS []inventory.DatasetReplica
	var wantB, gotB []inventory.BlockScan
	for d := range snap.Datasets() {
		wantDS = append(wantDS, slices.Collect(snap.DatasetReplicas(d.ID))...)
		for b := range snap.Blocks(d.ID) {
			wantB = append(wantB, inventory.BlockScan{ID: b.ID, Dataset: d.ID, Size: b.Size, NumFiles: b.NumFiles, LastUpdate: b.LastUpdate})
			if int32(b.ID) >= snap.BlockSlots() {
				t.Errorf("block %d is beyond BlockSlots %d", b.ID, snap.BlockSlots())
			}
		}
		if int32(d.ID) >= snap.DatasetSlots() {
			t.Errorf("dataset %d is beyond DatasetSlots %d", d.ID, snap.DatasetSlots())
		}
	}
	snap.ScanDatasetReplicas(func(r inventory.DatasetReplica) { gotDS = append(gotDS, r) })
	snap.ScanBlocks(func(b *inventory.BlockScan) { gotB = append(gotB, *b) })
	slices.SortFunc(wantDS, byDS)
	slices.SortFunc(gotDS, byDS)
	slices.SortFunc(wantB, func(a, b inventory.BlockScan) int { return cmp.Compare(a.ID, b.ID) })
	if !slices.Equal(gotDS, wantDS) {
		t.Errorf("dataset replica scan yields %d, the dataset lists %d (or they differ)", len(gotDS), len(wantDS))
	}
	if !slices.Equal(gotB, wantB) {
		t.Errorf("block scan yields %d blocks, the dataset lists %d (or they differ)", len(gotB), len(wantB))
	}
}
