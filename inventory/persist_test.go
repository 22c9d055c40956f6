package inventory_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
)

// sameAfterReload loads the database into a second store and checks that
// it holds what the first one holds in memory.
func sameAfterReload(t *testing.T, s *inventory.Store, d *db.DB) {
	t.Helper()
	snap := s.Snapshot()
	snap2 := load(t, d).Snapshot()
	invariants(t, snap2)
	if !reflect.DeepEqual(snap.Counts(), snap2.Counts()) {
		t.Fatalf("counts differ after reload: %+v vs %+v", snap.Counts(), snap2.Counts())
	}
	for ds := range snap.Datasets() {
		ds2, ok := snap2.DatasetByName(ds.Name)
		if !ok || !reflect.DeepEqual(ds, ds2) {
			t.Errorf("dataset %s: %+v vs %+v", ds.Name, ds, ds2)
		}
		for b := range snap.Blocks(ds.ID) {
			got := map[inventory.SiteID]inventory.BlockReplica{}
			for r := range snap2.BlockReplicas(b.ID) {
				got[r.Site] = r
			}
			for r := range snap.BlockReplicas(b.ID) {
				if got[r.Site] != r {
					t.Errorf("replica of %s at %d: memory %+v, database %+v", b.Name, r.Site, r, got[r.Site])
				}
				delete(got, r.Site)
			}
			if len(got) > 0 {
				t.Errorf("block %s: replicas only in the database: %+v", b.Name, got)
			}
		}
	}
}

// A large injection goes through multi-row statements in several chunks;
// the database must end up holding exactly what memory holds, and the
// progress reports must count up to every update.
func TestLargeInjectionPersistsWhatMemoryHolds(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		s := load(t, d)
		doc := synth.InjectDoc(synth.InjectSpec{Sites: 7, Datasets: 1200, Seed: 3})
		var last inventory.Progress
		var reports int
		res, err := s.InjectWithProgress(context.Background(), t0, doc, func(p inventory.Progress) {
			reports++
			if p.Phase == "write" && p.Done < last.Done {
				t.Errorf("progress went back from %d to %d", last.Done, p.Done)
			}
			last = p
		})
		if err != nil {
			t.Fatal(err)
		}
		if last.Phase != "write" || last.Done != res.Updates || last.Total != res.Updates || reports < 2 {
			t.Errorf("last progress %+v after %d reports; want write %d of %d", last, reports, res.Updates, res.Updates)
		}
		c := s.Snapshot().Counts()
		if c.Datasets != 1200 || c.Blocks != 3600 {
			t.Errorf("counts %+v, want 1200 datasets and 3600 blocks", c)
		}
		var files, changes int
		if err := d.GetContext(context.Background(), &files, "SELECT COUNT(*) FROM files"); err != nil {
			t.Fatal(err)
		}
		if err := d.GetContext(context.Background(), &changes, "SELECT COUNT(*) FROM inventory_changes"); err != nil {
			t.Fatal(err)
		}
		if files != 7200 || uint64(changes) != s.Seq() {
			t.Errorf("database holds %d files and %d change-log rows; want 7200 and %d", files, changes, s.Seq())
		}
		sameAfterReload(t, s, d)
	})
}

// Grouping updates by kind must not reorder the ones that do not commute:
// a block resized after a replica of it was written, and a replica made
// complete after files of it were recorded, in one write.
func TestGroupedWriteKeepsOrderWhereItMatters(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := load(t, d)
		inject(t, s, sampleDoc)
		snap := s.Snapshot()
		site, _ := snap.SiteByName("T2_A")
		c1, _ := snap.BlockByName("/P/R-v2/MINIAOD#c1") // incomplete at T2_A: 1 of 2 files
		files, err := s.Files(ctx, c1.ID)
		if err != nil || len(files) != 2 {
			t.Fatalf("files of c1: %v, %v", files, err)
		}
		ds, _ := snap.DatasetByName("/P/R-v2/MINIAOD")
		var newBlock inventory.BlockID
		_, err = s.Write(ctx, t0, func(tx *inventory.Txn) error {
			newBlock = tx.NewBlockID()
			add := func(us ...inventory.Update) error { return tx.Add(us...) }
			blk := inventory.Block{ID: newBlock, Dataset: ds.ID, Name: "c2", Size: 10, NumFiles: 1, LastUpdate: t0.Unix()}
			if err := add(inventory.UpsertBlock{Block: blk}); err != nil {
				return err
			}
			if err := add(inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: newBlock, Site: site.ID,
				Complete: true, Size: 10, NumFiles: 1, LastUpdate: t0.Unix()}}); err != nil {
				return err
			}
			blk.Size, blk.NumFiles = 25, 2 // grows after its replica was written
			if err := add(inventory.UpsertBlock{Block: blk}); err != nil {
				return err
			}
			// The missing file of c1 arrives, then the replica is complete.
			if err := add(inventory.SetReplicaFiles{Block: c1.ID, Site: site.ID, Add: []inventory.FileID{files[0].ID}}); err != nil {
				return err
			}
			return add(inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: c1.ID, Site: site.ID,
				Complete: true, Size: c1.Size, NumFiles: c1.NumFiles, LastUpdate: t0.Unix()}})
		})
		if err != nil {
			t.Fatal(err)
		}
		var size int64
		if err := d.GetContext(ctx, &size, "SELECT size FROM block_replicas WHERE block_id = ? AND site_id = ?", newBlock, site.ID); err != nil {
			t.Fatal(err)
		}
		if size != 25 {
			t.Errorf("complete replica of the grown block holds size %d in the database, want 25", size)
		}
		ids, err := s.ReplicaFileIDs(ctx, c1.ID, site.ID)
		if err != nil || len(ids) != 0 {
			t.Errorf("complete replica of c1 still lists files %v (%v)", ids, err)
		}
		sameAfterReload(t, s, d)
	})
}
