package inventory_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

var t0 = time.Unix(1_700_000_000, 0)

func ptr[T any](v T) *T { return &v }

func load(t testing.TB, d *db.DB) *inventory.Store {
	t.Helper()
	s, err := inventory.Load(context.Background(), d, logging.Discard(), nil, t0)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return s
}

func inject(t *testing.T, s *inventory.Store, doc string) inventory.WriteResult {
	t.Helper()
	d, err := inventory.DecodeInjectDoc(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Inject(context.Background(), t0, d)
	if err != nil {
		t.Fatalf("inject: %v", err)
	}
	return r
}

const sampleDoc = `{
 "sites": [
  {"name": "T2_A", "storage_type": "disk", "status": "ready", "backend": "file:///a", "quotas": {"Default": 1000}},
  {"name": "T1_B_MSS", "storage_type": "mss", "status": "ready"}
 ],
 "groups": [{"name": "AnalysisOps", "olevel": "dataset"}],
 "datasets": [
  {"name": "/P/R-v1/AOD", "status": "valid", "data_type": "mc", "software_version": "CMSSW_1", "blocks": [
    {"name": "b1", "files": [{"lfn": "/store/p/1.root", "size": 100, "adler32": "0000abcd"}, {"lfn": "/store/p/2.root", "size": 50}]},
    {"name": "b2", "size": 30, "num_files": 3}
  ]},
  {"name": "/P/R-v2/MINIAOD", "status": "production", "data_type": "data", "is_open": true, "blocks": [
    {"name": "c1", "files": [{"lfn": "/store/q/1.root", "size": 10}, {"lfn": "/store/q/2.root", "size": 20}]}
  ]}
 ],
 "dataset_replicas": [
  {"dataset": "/P/R-v1/AOD", "site": "T2_A", "group": "AnalysisOps"},
  {"dataset": "/P/R-v1/AOD", "site": "T1_B_MSS", "group": "AnalysisOps", "custodial": true}
 ],
 "block_replicas": [
  {"block": "/P/R-v2/MINIAOD#c1", "site": "T2_A", "group": "AnalysisOps", "files": ["/store/q/2.root"]}
 ]
}`

// invariants recomputes everything the store maintains incrementally from
// the snapshot's own lists and compares.
func invariants(t *testing.T, snap *inventory.Snapshot) {
	t.Helper()
	for _, site := range snap.Sites() {
		for _, p := range snap.Partitions() {
			var phys, proj int64
			for r := range snap.BlockReplicasInPartition(site.ID, p.ID) {
				b, _ := snap.Block(r.Block)
				phys += r.Size
				proj += b.Size
			}
			u := snap.Usage(site.ID, p.ID)
			if u.Physical != phys || u.Projected != proj {
				t.Errorf("%s/%s: usage %d/%d, recomputed %d/%d", site.Name, p.Name, u.Physical, u.Projected, phys, proj)
			}
		}
		var pending int64
		for r := range snap.BlockReplicasAtSite(site.ID) {
			if r.Site != site.ID {
				t.Errorf("replica of block %d listed at %s but is at %d", r.Block, site.Name, r.Site)
			}
			if r.PendingDeletion {
				pending += r.Size
			}
			found := false
			for o := range snap.BlockReplicas(r.Block) {
				found = found || o.Site == site.ID
			}
			if !found {
				t.Errorf("replica of block %d at %s missing from the block's list", r.Block, site.Name)
			}
		}
		if got := snap.PendingDeletion(site.ID); got != pending {
			t.Errorf("%s: pending deletion %d, recomputed %d", site.Name, got, pending)
		}
	}
	sameAsSiteIndex(t, snap)
	for d := range snap.Datasets() {
		var size int64
		var n int32
		for b := range snap.Blocks(d.ID) {
			size += b.Size
			n++
			if b.Dataset != d.ID {
				t.Errorf("block %s listed under the wrong dataset", b.Name)
			}
		}
		if size != d.Size || n != d.NumBlocks {
			t.Errorf("%s: size %d/%d blocks, recomputed %d/%d", d.Name, d.Size, d.NumBlocks, size, n)
		}
	}
}

func usage(t *testing.T, snap *inventory.Snapshot, site, part string) inventory.Usage {
	t.Helper()
	s, ok := snap.SiteByName(site)
	p, ok2 := snap.PartitionByName(part)
	if !ok || !ok2 {
		t.Fatalf("no site %s or partition %s", site, part)
	}
	return snap.Usage(s.ID, p.ID)
}

func TestInjectAndReloadRoundTrip(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		s := load(t, d)
		inject(t, s, sampleDoc)
		snap := s.Snapshot()
		invariants(t, snap)

		u := usage(t, snap, "T2_A", "Default")
		// b1 (150) + b2 (30) complete; c1 has 20 of 30 bytes.
		if u.Quota != 1000 || u.Physical != 200 || u.Projected != 210 {
			t.Fatalf("T2_A usage = %+v, want quota 1000 physical 200 projected 210", u)
		}
		c1, ok := snap.BlockByName("/P/R-v2/MINIAOD#c1")
		if !ok {
			t.Fatal("block c1 not found")
		}
		site, _ := snap.SiteByName("T2_A")
		ids, err := s.ReplicaFileIDs(context.Background(), c1.ID, site.ID)
		if err != nil || len(ids) != 1 {
			t.Fatalf("incomplete replica files = %v, %v; want one", ids, err)
		}

		// Reload from the database: the same state must come back.
		s2 := load(t, d)
		snap2 := s2.Snapshot()
		invariants(t, snap2)
		if snap2.Seq() != snap.Seq() {
			t.Errorf("seq after reload %d, before %d", snap2.Seq(), snap.Seq())
		}
		if !reflect.DeepEqual(snap.Counts(), snap2.Counts()) {
			t.Errorf("counts differ: %+v vs %+v", snap.Counts(), snap2.Counts())
		}
		for ds := range snap.Datasets() {
			ds2, ok := snap2.DatasetByName(ds.Name)
			if !ok || !reflect.DeepEqual(ds, ds2) {
				t.Errorf("dataset %s: %+v vs %+v", ds.Name, ds, ds2)
			}
			for b := range snap.Blocks(ds.ID) {
				var r1, r2 []inventory.BlockReplica
				for r := range snap.BlockReplicas(b.ID) {
					r1 = append(r1, r)
				}
				for r := range snap2.BlockReplicas(b.ID) {
					r2 = append(r2, r)
				}
				if len(r1) != len(r2) {
					t.Errorf("block %s: %d replicas vs %d", b.Name, len(r1), len(r2))
				}
				for _, a := range r1 {
					found := false
					for _, b := range r2 {
						found = found || reflect.DeepEqual(a, b)
					}
					if !found {
						t.Errorf("replica %+v lost in reload", a)
					}
				}
			}
		}
		for _, p := range snap.Partitions() {
			for _, st := range snap.Sites() {
				if a, b := snap.Usage(st.ID, p.ID), snap2.Usage(st.ID, p.ID); a != b {
					t.Errorf("usage %s/%s: %+v vs %+v", st.Name, p.Name, a, b)
				}
			}
		}
		files, err := s2.Files(context.Background(), c1.ID)
		if err != nil || len(files) != 2 || files[0].LFN != "/store/q/1.root" {
			t.Errorf("files of c1 = %+v, %v", files, err)
		}
	})
}

func TestFailedTransactionLeavesMemoryUnchanged(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		s := load(t, d)
		inject(t, s, sampleDoc)
		before := s.Snapshot()
		seq := before.Seq()
		// The same LFN in two blocks of one write (which injection
		// validation refuses, so this builds the write by hand) fails in
		// the database on the unique key, after earlier updates of the same
		// write were already sent.
		_, err := s.Write(context.Background(), t0, func(t *inventory.Txn) error {
			ds := t.NewDatasetID()
			if err := t.Add(inventory.UpsertDataset{Dataset: inventory.Dataset{ID: ds, Name: "/X/Y/Z", Status: inventory.DatasetValid, DataType: inventory.DataMC}}); err != nil {
				return err
			}
			for _, name := range []string{"a", "b"} {
				b := t.NewBlockID()
				if err := t.Add(inventory.UpsertBlock{Block: inventory.Block{ID: b, Dataset: ds, Name: name, Size: 1, NumFiles: 1}}); err != nil {
					return err
				}
				f := inventory.File{ID: t.NewFileID(), Block: b, LFN: "/store/x/dup.root", Size: 1}
				if err := t.Add(inventory.UpsertFiles{Block: b, Files: []inventory.File{f}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil || !db.IsDuplicate(err) {
			t.Fatalf("want a duplicate-key error, got %v", err)
		}
		after := s.Snapshot()
		if after.Seq() != seq {
			t.Errorf("seq moved from %d to %d", seq, after.Seq())
		}
		if _, ok := after.DatasetByName("/X/Y/Z"); ok {
			t.Error("dataset of the failed write is visible in memory")
		}
		var n int
		if err := d.Get(&n, "SELECT COUNT(*) FROM datasets WHERE name = '/X/Y/Z'"); err != nil || n != 0 {
			t.Errorf("dataset of the failed write in the database: %d %v", n, err)
		}
		// And the store still works afterwards.
		inject(t, s, `{"groups": [{"name": "DataOps", "olevel": "block"}]}`)
		if _, ok := s.Snapshot().GroupByName("DataOps"); !ok {
			t.Error("write after a failed write did not apply")
		}
	})
}

func TestOccupancyAfterEveryKindOfUpdate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := load(t, d)
		inject(t, s, sampleDoc)
		snap := s.Snapshot()
		site, _ := snap.SiteByName("T2_A")
		b1, _ := snap.BlockByName("/P/R-v1/AOD#b1")
		b2, _ := snap.BlockByName("/P/R-v1/AOD#b2")
		ds, _ := snap.DatasetByName("/P/R-v1/AOD")
		grp, _ := snap.GroupByName("AnalysisOps")

		step := func(name string, wantPhys, wantProj, wantPending int64, fn func(*inventory.Txn) error) {
			t.Helper()
			if _, err := s.Write(ctx, t0, fn); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			sn := s.Snapshot()
			invariants(t, sn)
			u := usage(t, sn, "T2_A", "Default")
			if u.Physical != wantPhys || u.Projected != wantProj || sn.PendingDeletion(site.ID) != wantPending {
				t.Fatalf("%s: physical %d projected %d pending %d; want %d %d %d", name,
					u.Physical, u.Projected, sn.PendingDeletion(site.ID), wantPhys, wantProj, wantPending)
			}
		}
		// Start: b1 150 + b2 30 complete, c1 20/30 → 200 / 210.
		step("block grows", 220, 230, 0, func(t *inventory.Txn) error {
			return t.Add(inventory.UpsertBlock{Block: inventory.Block{ID: b2.ID, Dataset: ds.ID, Name: "b2", Size: 50, NumFiles: 3, LastUpdate: 1}})
		})
		step("replica becomes incomplete", 180, 230, 0, func(t *inventory.Txn) error {
			return t.Add(inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: b2.ID, Site: site.ID, Group: grp.ID, Size: 10, NumFiles: 1}})
		})
		step("replica pending deletion", 30, 80, 150, func(t *inventory.Txn) error {
			return t.Add(inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: b1.ID, Site: site.ID, Group: grp.ID, PendingDeletion: true, Complete: true, Size: 150, NumFiles: 2}})
		})
		step("replica deleted", 30, 80, 0, func(t *inventory.Txn) error {
			return t.Add(inventory.DeleteBlockReplica{Block: b1.ID, Site: site.ID})
		})
		step("owner removed (leaves owner partition)", 20, 30, 0, func(t *inventory.Txn) error {
			return t.Add(inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: b2.ID, Site: site.ID, Group: inventory.NoGroup, Size: 10, NumFiles: 1}})
		})
		step("block deleted", 20, 30, 0, func(t *inventory.Txn) error {
			return t.Add(inventory.DeleteBlock{ID: b2.ID})
		})
		step("site to tape keeps Default (owner-based)", 20, 30, 0, func(t *inventory.Txn) error {
			return t.Add(inventory.UpsertSite{Site: inventory.Site{ID: site.ID, Name: "T2_A", StorageType: inventory.StorageMSS, Status: inventory.SiteMorgue}})
		})
		mini, _ := s.Snapshot().DatasetByName("/P/R-v2/MINIAOD")
		step("dataset deleted", 0, 0, 0, func(t *inventory.Txn) error {
			return t.Add(inventory.DeleteDataset{ID: mini.ID})
		})
		// Everything survives a reload.
		s2 := load(t, d)
		invariants(t, s2.Snapshot())
		if got := s2.Snapshot().Counts(); got != s.Snapshot().Counts() {
			t.Errorf("counts after reload %+v, before %+v", got, s.Snapshot().Counts())
		}
	})
}

func TestPartitionsWithConditionsAndSuperPartitions(t *testing.T) {
	d := testdb.SQLite(t)
	defs := []inventory.PartitionDef{
		{Name: "Disk", Match: func(f *inventory.ReplicaFacts) bool { return f.GroupName != "" && f.SiteType == inventory.StorageDisk }},
		{Name: "Tape", Match: func(f *inventory.ReplicaFacts) bool { return f.SiteType == inventory.StorageMSS }},
		{Name: "All", Subs: []string{"Disk", "Tape"}},
	}
	s, err := inventory.Load(context.Background(), d, logging.Discard(), defs, t0)
	if err != nil {
		t.Fatal(err)
	}
	inject(t, s, strings.Replace(sampleDoc, `"Default": 1000`, `"Disk": 1000`, 1))
	snap := s.Snapshot()
	invariants(t, snap)
	if u := usage(t, snap, "T2_A", "Disk"); u.Physical != 200 {
		t.Errorf("Disk at T2_A: %+v", u)
	}
	if u := usage(t, snap, "T1_B_MSS", "Tape"); u.Physical != 180 {
		t.Errorf("Tape at T1_B_MSS: %+v", u)
	}
	if u := usage(t, snap, "T2_A", "All"); u.Physical != 200 || u.Quota != 1000 {
		t.Errorf("super-partition All at T2_A: %+v (quota is the sum of the subs')", u)
	}
	bad := []inventory.PartitionDef{{Name: "S", Subs: []string{"Nope"}}}
	if err := s.SetPartitions(context.Background(), t0, bad); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("unknown sub-partition accepted: %v", err)
	}
}

func TestSnapshotIsolation(t *testing.T) {
	d := testdb.SQLite(t)
	s := load(t, d)
	inject(t, s, sampleDoc)
	old := s.Snapshot()
	oldUsage := usage(t, old, "T2_A", "Default")
	ds, _ := old.DatasetByName("/P/R-v1/AOD")
	if _, err := s.Write(context.Background(), t0, func(t *inventory.Txn) error {
		return t.Add(inventory.DeleteDataset{ID: ds.ID})
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok := old.DatasetByName("/P/R-v1/AOD"); !ok {
		t.Error("old snapshot lost a dataset deleted after it was taken")
	}
	if u := usage(t, old, "T2_A", "Default"); u != oldUsage {
		t.Errorf("old snapshot usage changed: %+v -> %+v", oldUsage, u)
	}
	invariants(t, old)
	if _, ok := s.Snapshot().DatasetByName("/P/R-v1/AOD"); ok {
		t.Error("new snapshot still has the deleted dataset")
	}
	invariants(t, s.Snapshot())
}

func TestBadInjectionsAreRejectedWhole(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", `{"sites": [{"name": "T2_A", "storage_type": "disk", "status": "ready", "colour": 1}]}`, "unknown field"},
		{"bad enum", `{"sites": [{"name": "T2_A", "storage_type": "floppy", "status": "ready"}]}`, "storage type"},
		{"bad site name", `{"sites": [{"name": "T2 A/x", "storage_type": "disk", "status": "ready"}]}`, "site name"},
		{"bad dataset name", `{"datasets": [{"name": "/only/two", "status": "valid", "data_type": "mc"}]}`, "/Primary/Processed/TIER"},
		{"relative lfn", `{"datasets": [{"name": "/A/B/C", "status": "valid", "data_type": "mc", "blocks": [{"name": "b", "files": [{"lfn": "store/x", "size": 1}]}]}]}`, "absolute"},
		{"negative size", `{"datasets": [{"name": "/A/B/C", "status": "valid", "data_type": "mc", "blocks": [{"name": "b", "files": [{"lfn": "/store/x", "size": -1}]}]}]}`, "negative"},
		{"bad checksum", `{"datasets": [{"name": "/A/B/C", "status": "valid", "data_type": "mc", "blocks": [{"name": "b", "files": [{"lfn": "/store/x", "size": 1, "adler32": "xyz"}]}]}]}`, "adler32"},
		{"size mismatch", `{"datasets": [{"name": "/A/B/C", "status": "valid", "data_type": "mc", "blocks": [{"name": "b", "size": 5, "files": [{"lfn": "/store/x", "size": 1}]}]}]}`, "does not match"},
		{"no size", `{"datasets": [{"name": "/A/B/C", "status": "valid", "data_type": "mc", "blocks": [{"name": "b"}]}]}`, "either files"},
		{"unknown site", `{"dataset_replicas": [{"dataset": "/P/R-v1/AOD", "site": "T3_NOPE"}]}`, "unknown site"},
		{"unknown group", `{"dataset_replicas": [{"dataset": "/P/R-v1/AOD", "site": "T2_A", "group": "Nobody"}]}`, "unknown group"},
		{"unknown partition", `{"sites": [{"name": "T2_C", "storage_type": "disk", "status": "ready", "quotas": {"Nope": 1}}]}`, "unknown partition"},
		{"replica file not in block", `{"datasets": [{"name": "/A/B/C", "status": "valid", "data_type": "mc", "blocks": [{"name": "b", "files": [{"lfn": "/store/x", "size": 1}, {"lfn": "/store/y", "size": 1}]}]}],
			"block_replicas": [{"block": "/A/B/C#b", "site": "T2_A", "files": ["/store/z"]}]}`, "not a file of the block"},
		{"lfn of another block", `{"datasets": [{"name": "/A/B/C", "status": "valid", "data_type": "mc", "blocks": [{"name": "b", "files": [{"lfn": "/store/p/1.root", "size": 1}]}]}]}`, "another block"},
		{"bad block name", `{"block_replicas": [{"block": "no-hash", "site": "T2_A"}]}`, "dataset#block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testdb.SQLite(t)
			s := load(t, d)
			inject(t, s, sampleDoc)
			seq := s.Seq()
			var nChanges int
			_ = d.Get(&nChanges, "SELECT COUNT(*) FROM inventory_changes")
			doc, err := inventory.DecodeInjectDoc(strings.NewReader(tc.doc))
			if err == nil {
				_, err = s.Inject(context.Background(), t0, doc)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v; want it to contain %q", err, tc.want)
			}
			var after int
			_ = d.Get(&after, "SELECT COUNT(*) FROM inventory_changes")
			if s.Seq() != seq || after != nChanges {
				t.Errorf("a rejected injection changed something: seq %d→%d, change log %d→%d", seq, s.Seq(), nChanges, after)
			}
		})
	}
}

func TestCatchUpFromChangeLog(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		a := load(t, d)
		b := load(t, d)
		inject(t, a, sampleDoc)
		n, err := b.CatchUp(context.Background())
		if err != nil || n == 0 {
			t.Fatalf("catch up: %d, %v", n, err)
		}
		if b.Seq() != a.Seq() || b.Snapshot().Counts() != a.Snapshot().Counts() {
			t.Fatalf("after catch-up seq %d counts %+v; writer seq %d counts %+v", b.Seq(), b.Snapshot().Counts(), a.Seq(), a.Snapshot().Counts())
		}
		invariants(t, b.Snapshot())
		// A stale writer cannot write over the log: its seq is taken.
		c := load(t, d)
		inject(t, a, `{"groups": [{"name": "G2", "olevel": "dataset"}]}`)
		_, err = c.Write(context.Background(), t0, func(tx *inventory.Txn) error {
			return tx.Add(inventory.UpsertGroup{Group: inventory.Group{ID: tx.NewGroupID(), Name: "G3"}})
		})
		if err == nil {
			t.Fatal("a writer behind the change log was allowed to write")
		}
		if !errors.Is(err, inventory.ErrStale) {
			t.Errorf("stale writer error %v is not ErrStale", err)
		}
		// Two stores on an empty database both creating the default
		// partition: the second catches up instead of failing.
		if _, err := inventory.Load(context.Background(), d, logging.Discard(), []inventory.PartitionDef{
			{Name: "Extra", Match: func(*inventory.ReplicaFacts) bool { return true }}}, t0); err != nil {
			t.Fatal(err)
		}
		if err := b.SetPartitions(context.Background(), t0, []inventory.PartitionDef{
			{Name: "Extra", Match: func(*inventory.ReplicaFacts) bool { return true }}}); err != nil {
			t.Errorf("partitions after another writer created them: %v", err)
		}
	})
}

func TestNameChecks(t *testing.T) {
	good := []string{"/A/B-v1/AOD", "/ZeroBias/Run2018A-17Sep2018-v1/MINIAOD"}
	bad := []string{"", "A/B/C", "/A/B", "/A//C", "/A/B/C/D", "/A/B C/D", "/A/B/C;rm"}
	for _, n := range good {
		if err := inventory.CheckDatasetName(n); err != nil {
			t.Errorf("%s rejected: %v", n, err)
		}
	}
	for _, n := range bad {
		if err := inventory.CheckDatasetName(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
	for _, l := range []string{"x", "/a/../b", "/a//b", "/a/b c"} {
		if inventory.CheckLFN(l) == nil {
			t.Errorf("LFN %q accepted", l)
		}
	}
	if _, _, err := inventory.SplitBlockName("/A/B/C#0123-abcd"); err != nil {
		t.Error(err)
	}
}

// Names are case-sensitive on both dialects: MySQL's default ascii
// collation is not, which would make /a and /A the same LFN.
func TestNamesAreCaseSensitive(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		s := load(t, d)
		inject(t, s, `{"datasets": [{"name": "/A/B/C", "status": "valid", "data_type": "mc", "blocks": [
			{"name": "b", "files": [{"lfn": "/store/x.root", "size": 1}, {"lfn": "/store/X.root", "size": 2}]}]},
			{"name": "/a/B/C", "status": "valid", "data_type": "mc"}]}`)
		var lfns []string
		if err := d.Select(&lfns, "SELECT lfn FROM files ORDER BY lfn"); err != nil {
			t.Fatal(err)
		}
		if len(lfns) != 2 || lfns[0] != "/store/X.root" {
			t.Fatalf("files ordered %v; want byte order with both kept", lfns)
		}
	})
}
