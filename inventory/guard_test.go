package inventory_test

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dynamo-go/dynamo/inventory"
)

// fakeCopies is a CopyReader over plain slices.
type fakeCopies struct {
	sites map[inventory.SiteID]inventory.Site
	reps  []inventory.BlockReplica
}

func (f fakeCopies) Site(id inventory.SiteID) (inventory.Site, bool) {
	s, ok := f.sites[id]
	return s, ok
}

func (f fakeCopies) BlockReplica(b inventory.BlockID, site inventory.SiteID) (inventory.BlockReplica, bool) {
	for _, r := range f.reps {
		if r.Block == b && r.Site == site {
			return r, true
		}
	}
	return inventory.BlockReplica{}, false
}

func (f fakeCopies) BlockReplicas(b inventory.BlockID) iter.Seq[inventory.BlockReplica] {
	return func(yield func(inventory.BlockReplica) bool) {
		for _, r := range f.reps {
			if r.Block == b && !yield(r) {
				return
			}
		}
	}
}

func TestDeletionGuard(t *testing.T) {
	const (
		disk inventory.SiteID = iota + 1
		disk2
		mss
		buffer
		unknownType
		morgue
		waitroom
		unknownStatus
	)
	sites := map[inventory.SiteID]inventory.Site{
		disk:          {ID: disk, Name: "T2_DISK", StorageType: inventory.StorageDisk, Status: inventory.SiteReady},
		disk2:         {ID: disk2, Name: "T2_DISK2", StorageType: inventory.StorageDisk, Status: inventory.SiteReady},
		mss:           {ID: mss, Name: "T1_MSS", StorageType: inventory.StorageMSS, Status: inventory.SiteReady},
		buffer:        {ID: buffer, Name: "T1_BUFFER", StorageType: inventory.StorageBuffer, Status: inventory.SiteReady},
		unknownType:   {ID: unknownType, Name: "T3_X", StorageType: inventory.StorageUnknown, Status: inventory.SiteReady},
		morgue:        {ID: morgue, Name: "T2_MORGUE", StorageType: inventory.StorageDisk, Status: inventory.SiteMorgue},
		waitroom:      {ID: waitroom, Name: "T2_WAIT", StorageType: inventory.StorageDisk, Status: inventory.SiteWaitroom},
		unknownStatus: {ID: unknownStatus, Name: "T2_UNK", StorageType: inventory.StorageDisk, Status: inventory.SiteUnknown},
	}
	full := func(site inventory.SiteID) inventory.BlockReplica {
		return inventory.BlockReplica{Block: 1, Site: site, Complete: true}
	}
	partial := inventory.BlockReplica{Block: 1, Site: disk2}
	pending := full(disk2)
	pending.PendingDeletion = true
	suspicious := full(disk2)
	suspicious.Suspicious = true

	for _, tc := range []struct {
		name  string
		reps  []inventory.BlockReplica
		del   inventory.SiteID
		allow bool
		want  inventory.Verdict
	}{
		{"sole copy at disk", []inventory.BlockReplica{full(disk)}, disk, false, inventory.Verdict{Reason: inventory.GuardLastCopy}},
		{"sole copy at mss", []inventory.BlockReplica{full(mss)}, mss, false, inventory.Verdict{Reason: inventory.GuardLastCopy}},
		{"sole copy at buffer", []inventory.BlockReplica{full(buffer)}, buffer, false, inventory.Verdict{Reason: inventory.GuardLastCopy}},
		{"sole copy at unknown type", []inventory.BlockReplica{full(unknownType)}, unknownType, false, inventory.Verdict{Reason: inventory.GuardLastCopy}},
		{"sole incomplete copy", []inventory.BlockReplica{partial}, disk2, false, inventory.Verdict{Reason: inventory.GuardLastCopy}},
		{"other copy at morgue", []inventory.BlockReplica{full(disk), full(morgue)}, disk, false, inventory.Verdict{Reason: inventory.GuardLastCopy}},
		{"other copy at unknown status", []inventory.BlockReplica{full(disk), full(unknownStatus)}, disk, false, inventory.Verdict{Reason: inventory.GuardLastCopy}},
		{"other copy incomplete", []inventory.BlockReplica{full(disk), partial}, disk, false, inventory.Verdict{Reason: inventory.GuardLastCopy}},
		{"other copy pending deletion", []inventory.BlockReplica{full(disk), pending}, disk, false, inventory.Verdict{Reason: inventory.GuardLastCopy}},
		{"other copy suspicious", []inventory.BlockReplica{full(disk), suspicious}, disk, false, inventory.Verdict{Reason: inventory.GuardLastCopy}},
		{"other copy at tape", []inventory.BlockReplica{full(disk), full(mss)}, disk, false, inventory.Verdict{Allowed: true}},
		{"other copy at waitroom", []inventory.BlockReplica{full(disk), full(waitroom)}, disk, false, inventory.Verdict{Allowed: true}},
		{"copy at morgue, other at disk", []inventory.BlockReplica{full(disk), full(morgue)}, morgue, false, inventory.Verdict{Allowed: true}},
		{"incomplete, complete elsewhere", []inventory.BlockReplica{full(disk), partial}, disk2, false, inventory.Verdict{Allowed: true}},
		{"sole copy with opt-in", []inventory.BlockReplica{full(mss)}, mss, true, inventory.Verdict{Allowed: true, LastCopy: true}},
		{"no replica", []inventory.BlockReplica{full(mss)}, disk, true, inventory.Verdict{Reason: inventory.GuardNoReplica}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := inventory.NewDeletionGuard(fakeCopies{sites, tc.reps})
			if got := g.Check(1, tc.del, tc.allow); got != tc.want {
				t.Fatalf("Check: got %+v, want %+v", got, tc.want)
			}
			if got := g.Admit(1, tc.del, tc.allow); got != tc.want {
				t.Fatalf("Admit: got %+v, want %+v", got, tc.want)
			}
		})
	}

	// Within one plan, earlier admitted deletions are gone for later ones:
	// of three copies, two may go, the third is the last.
	r := fakeCopies{sites, []inventory.BlockReplica{full(disk), full(disk2), full(mss)}}
	v := inventory.CheckDeletions(r, []inventory.ReplicaID{{Block: 1, Site: disk}, {Block: 1, Site: mss}, {Block: 1, Site: disk2}, {Block: 1, Site: disk}}, nil)
	want := []inventory.Verdict{{Allowed: true}, {Allowed: true}, {Reason: inventory.GuardLastCopy}, {Allowed: true}}
	for i := range want {
		if v[i] != want[i] {
			t.Fatalf("deletion %d: got %+v, want %+v", i, v[i], want[i])
		}
	}
	// The opt-in applies per deletion.
	v = inventory.CheckDeletions(r, []inventory.ReplicaID{{Block: 1, Site: disk}, {Block: 1, Site: mss}, {Block: 1, Site: disk2}},
		func(id inventory.ReplicaID) bool { return id.Site == disk2 })
	if !v[2].Allowed || !v[2].LastCopy || v[0].LastCopy || v[1].LastCopy {
		t.Fatalf("opt-in: got %+v", v)
	}
}

// directVerdict is the guard's rule computed from scratch: the copies of
// the block that count, leaving out the replica itself and every replica
// admitted before.
func directVerdict(r inventory.CopyReader, admitted map[inventory.ReplicaID]inventory.Verdict, id inventory.ReplicaID, allow bool) inventory.Verdict {
	if v, ok := admitted[id]; ok {
		return v
	}
	if _, ok := r.BlockReplica(id.Block, id.Site); !ok {
		return inventory.Verdict{Reason: inventory.GuardNoReplica}
	}
	others := 0
	for br := range r.BlockReplicas(id.Block) {
		if _, gone := admitted[inventory.ReplicaID{Block: br.Block, Site: br.Site}]; gone || br.Site == id.Site {
			continue
		}
		if s, ok := r.Site(br.Site); ok && inventory.CountsAsCopy(s, br) {
			others++
		}
	}
	switch {
	case others >= 1:
		return inventory.Verdict{Allowed: true}
	case allow:
		return inventory.Verdict{Allowed: true, LastCopy: true}
	}
	return inventory.Verdict{Reason: inventory.GuardLastCopy}
}

// The map-backed guard and the bulk guard (array over block ids, with ids
// beyond its size in maps) give the verdicts of a direct count on random
// inventories and random sequences of checks and admissions.
func TestDeletionGuardBulkMatchesDirectCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 1))
	statuses := []inventory.SiteStatus{inventory.SiteReady, inventory.SiteWaitroom, inventory.SiteMorgue, inventory.SiteUnknown}
	for round := 0; round < 200; round++ {
		nsites, nblocks := 1+rng.IntN(6), 1+rng.IntN(40)
		r := fakeCopies{sites: map[inventory.SiteID]inventory.Site{}}
		for s := 1; s <= nsites; s++ {
			r.sites[inventory.SiteID(s)] = inventory.Site{ID: inventory.SiteID(s), StorageType: inventory.StorageDisk,
				Status: statuses[rng.IntN(len(statuses))]}
		}
		for b := 1; b <= nblocks; b++ {
			for s := 1; s <= nsites+1; s++ { // site nsites+1 is not in the inventory
				if rng.IntN(3) == 0 {
					continue
				}
				r.reps = append(r.reps, inventory.BlockReplica{Block: inventory.BlockID(b), Site: inventory.SiteID(s),
					Complete: rng.IntN(5) > 0, PendingDeletion: rng.IntN(8) == 0, Suspicious: rng.IntN(10) == 0})
			}
		}
		guards := map[string]*inventory.DeletionGuard{
			"maps":          inventory.NewDeletionGuard(r),
			"bulk":          inventory.NewBulkDeletionGuard(r, nblocks+1),
			"bulk, partial": inventory.NewBulkDeletionGuard(r, rng.IntN(nblocks+1)),
		}
		admitted := map[inventory.ReplicaID]inventory.Verdict{}
		for step := 0; step < 3*nblocks*nsites; step++ {
			id := inventory.ReplicaID{Block: inventory.BlockID(1 + rng.IntN(nblocks+1)), Site: inventory.SiteID(1 + rng.IntN(nsites+1))}
			allow, admit := rng.IntN(4) == 0, rng.IntN(3) > 0
			want := directVerdict(r, admitted, id, allow)
			if admit && want.Allowed {
				admitted[id] = want
			}
			for name, g := range guards {
				var got inventory.Verdict
				if admit {
					got = g.Admit(id.Block, id.Site, allow)
				} else {
					got = g.Check(id.Block, id.Site, allow)
				}
				if got != want {
					t.Fatalf("round %d step %d, %s guard, %+v allow %v admit %v: got %+v, want %+v", round, step, name, id, allow, admit, got, want)
				}
			}
		}
	}
}

// blockCopies is a CopyReader indexed by block, for guards over many blocks.
type blockCopies struct {
	sites map[inventory.SiteID]inventory.Site
	reps  map[inventory.BlockID][]inventory.BlockReplica
}

func (f blockCopies) Site(id inventory.SiteID) (inventory.Site, bool) {
	s, ok := f.sites[id]
	return s, ok
}

func (f blockCopies) BlockReplica(b inventory.BlockID, site inventory.SiteID) (inventory.BlockReplica, bool) {
	for _, r := range f.reps[b] {
		if r.Site == site {
			return r, true
		}
	}
	return inventory.BlockReplica{}, false
}

func (f blockCopies) BlockReplicas(b inventory.BlockID) iter.Seq[inventory.BlockReplica] {
	return slices.Values(f.reps[b])
}

// A bulk guard remembers every admission of a long plan (its storage
// grows in chunks): a second admission of any of them returns the first
// verdict, and each block's last copy is refused.
func TestBulkDeletionGuardLongPlan(t *testing.T) {
	const n = 50_000
	r := blockCopies{sites: map[inventory.SiteID]inventory.Site{}, reps: map[inventory.BlockID][]inventory.BlockReplica{}}
	for s := inventory.SiteID(1); s <= 3; s++ {
		r.sites[s] = inventory.Site{ID: s, StorageType: inventory.StorageDisk, Status: inventory.SiteReady}
	}
	for b := inventory.BlockID(1); b <= n; b++ {
		for s := inventory.SiteID(1); s <= 3; s++ {
			r.reps[b] = append(r.reps[b], inventory.BlockReplica{Block: b, Site: s, Complete: true})
		}
	}
	g := inventory.NewBulkDeletionGuard(r, n/2) // half the blocks in the array, half in maps
	for s := inventory.SiteID(1); s <= 2; s++ {
		for b := inventory.BlockID(1); b <= n; b++ {
			// The opt-in (even blocks) changes nothing while other copies survive.
			if v := g.Admit(b, s, b%2 == 0); !v.Allowed || v.LastCopy {
				t.Fatalf("block %d at %d: %+v", b, s, v)
			}
		}
	}
	for b := inventory.BlockID(1); b <= n; b++ {
		if v := g.Admit(b, 3, false); v.Allowed || v.Reason != inventory.GuardLastCopy {
			t.Fatalf("last copy of block %d: %+v", b, v)
		}
		for s := inventory.SiteID(1); s <= 2; s++ {
			if v := g.Admit(b, s, false); v != (inventory.Verdict{Allowed: true}) {
				t.Fatalf("block %d at %d again: %+v", b, s, v)
			}
		}
		if v := g.Admit(b, 3, true); !v.Allowed || !v.LastCopy {
			t.Fatalf("last copy of block %d with the opt-in: %+v", b, v)
		}
		if v := g.Check(b, 3, false); !v.Allowed || !v.LastCopy {
			t.Fatalf("last copy of block %d once admitted: %+v", b, v)
		}
	}
}

// onlyCopyReader hides everything of a reader but the CopyReader methods.
type onlyCopyReader struct{ inventory.CopyReader }

// Over a snapshot the guard walks the inventory's records directly; its
// verdicts are those of the same guard reading the snapshot through the
// CopyReader methods, and of a direct count.
func TestDeletionGuardOnSnapshot(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 2))
	statuses := []inventory.SiteStatus{inventory.SiteReady, inventory.SiteWaitroom, inventory.SiteMorgue, inventory.SiteUnknown}
	for round := 0; round < 30; round++ {
		b, err := inventory.NewBuilder(nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		nsites, nblocks := 1+rng.IntN(6), 1+rng.IntN(60)
		for s := 1; s <= nsites; s++ {
			b.Site(inventory.Site{ID: inventory.SiteID(s), Name: fmt.Sprintf("T2_S%d", s), StorageType: inventory.StorageDisk,
				Status: statuses[rng.IntN(len(statuses))]})
		}
		b.Group(inventory.Group{ID: 1, Name: "g"})
		b.Dataset(inventory.Dataset{ID: 1, Name: "/a/b/RAW", Status: inventory.DatasetValid})
		for blk := 1; blk <= nblocks; blk++ {
			b.Block(inventory.BlockID(blk), 1, []byte(fmt.Sprintf("b%d", blk)), 100, 2, false, 0)
			for s := 1; s <= nsites; s++ {
				if rng.IntN(3) == 0 {
					continue
				}
				br := inventory.BlockReplica{Block: inventory.BlockID(blk), Site: inventory.SiteID(s), Group: 1,
					PendingDeletion: rng.IntN(8) == 0, Suspicious: rng.IntN(10) == 0, Complete: true, Size: 100, NumFiles: 2}
				if rng.IntN(5) == 0 {
					br.Complete, br.Size, br.NumFiles = false, 50, 1
				}
				b.BlockReplica(br)
			}
		}
		snap := b.Store().Snapshot()
		guards := map[string]*inventory.DeletionGuard{
			"snapshot":          inventory.NewBulkDeletionGuard(snap, nblocks+1),
			"through the reads": inventory.NewDeletionGuard(onlyCopyReader{snap}),
		}
		admitted := map[inventory.ReplicaID]inventory.Verdict{}
		for step := 0; step < 3*nblocks*nsites; step++ {
			id := inventory.ReplicaID{Block: inventory.BlockID(1 + rng.IntN(nblocks+1)), Site: inventory.SiteID(1 + rng.IntN(nsites+1))}
			allow := rng.IntN(4) == 0
			want := directVerdict(snap, admitted, id, allow)
			if want.Allowed {
				admitted[id] = want
			}
			for name, g := range guards {
				if got := g.Admit(id.Block, id.Site, allow); got != want {
					t.Fatalf("round %d step %d, %s: %+v allow %v: got %+v, want %+v", round, step, name, id, allow, got, want)
				}
			}
		}
	}
}
