package inventory_test

import (
	"iter"
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
