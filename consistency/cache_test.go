package consistency_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// cacheFixture is an inventory with site T2_A holding blocks b0..b5 of one
// dataset (b5 incomplete, one file present) and T2_B holding b6.
func cacheFixture(t *testing.T, d *db.DB) (*inventory.Store, inventory.SiteID) {
	t.Helper()
	ctx := context.Background()
	st, err := inventory.Load(ctx, d, testLog(t), nil, time.Unix(1e9, 0))
	if err != nil {
		t.Fatal(err)
	}
	var blocks, atA []string
	for b := range 7 {
		var files []string
		for f := range 3 {
			files = append(files, fmt.Sprintf(`{"lfn": "/store/d/%d/f%d-%d", "size": %d, "adler32": "0000000%d"}`, f, f, b, 10*b+f+1, f))
		}
		blocks = append(blocks, fmt.Sprintf(`{"name": "b%d", "files": [%s]}`, b, strings.Join(files, ",")))
		if b < 5 {
			atA = append(atA, fmt.Sprintf(`"b%d"`, b))
		}
	}
	doc := `{
 "sites": [{"name": "T2_A", "storage_type": "disk", "status": "ready"}, {"name": "T2_B", "storage_type": "disk", "status": "ready"}],
 "groups": [{"name": "G", "olevel": "dataset"}],
 "datasets": [{"name": "/P/R-v1/AOD", "status": "valid", "data_type": "mc", "is_open": true, "blocks": [` + strings.Join(blocks, ",") + `]}],
 "dataset_replicas": [{"dataset": "/P/R-v1/AOD", "site": "T2_A", "group": "G", "growing": false, "blocks": [` + strings.Join(atA, ",") + `]},
                      {"dataset": "/P/R-v1/AOD", "site": "T2_B", "group": "G", "growing": false, "blocks": ["b6"]}],
 "block_replicas": [{"block": "/P/R-v1/AOD#b5", "site": "T2_A", "group": "G", "files": ["/store/d/1/f1-5"]}]
}`
	idoc, err := inventory.DecodeInjectDoc(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Inject(ctx, time.Unix(1e9, 0), idoc); err != nil {
		t.Fatal(err)
	}
	site, _ := st.Snapshot().SiteByName("T2_A")
	return st, site.ID
}

// expLine renders one inventory record for comparisons.
func expLine(e *consistency.ExpRec) string {
	return fmt.Sprintf("%s size=%d ck=%s file=%d block=%d state=%d upd=%d", e.LFN, e.Size, e.Adler32, e.FileID, e.BlockID, e.State, e.ReplicaUpdate)
}

func drain(t *testing.T, s consistency.InventoryStream) []string {
	t.Helper()
	defer s.Close()
	var out []string
	for s.Next() {
		out = append(out, expLine(s.Rec()))
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// coldSide is the reference: everything read from the database.
func coldSide(t *testing.T, d *db.DB, snap *inventory.Snapshot, site inventory.SiteID) []string {
	t.Helper()
	x, err := consistency.ExtractExpected(context.Background(), d, snap, site, t.TempDir(), consistency.ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := consistency.MergeExpected(x.Runs, snap, site)
	if err != nil {
		t.Fatal(err)
	}
	return drain(t, s)
}

// prepareAndCommit runs one run's inventory side through the cache.
func prepareAndCommit(t *testing.T, d *db.DB, snap *inventory.Snapshot, site inventory.SiteID, cache string) (consistency.PrepareStats, []string) {
	t.Helper()
	p, err := consistency.PrepareExpected(context.Background(), d, snap, site, cache, t.TempDir(), consistency.ExtractOptions{BatchBlocks: 2})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	got := drain(t, s)
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	return p.Stats, got
}

// TestInventoryCacheFollowsChanges: a run after inventory changes reads
// only the blocks the change log names (plus blocks new at the site), and
// what it yields is exactly what reading everything yields.
func TestInventoryCacheFollowsChanges(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		st, site := cacheFixture(t, d)
		cache := filepath.Join(t.TempDir(), "cache")

		stats, got := prepareAndCommit(t, d, st.Snapshot(), site, cache)
		if !stats.Cold || stats.ReadBlocks != 6 {
			t.Fatalf("first run: %+v, want cold, 6 blocks read", stats)
		}
		if want := coldSide(t, d, st.Snapshot(), site); !slices.Equal(got, want) {
			t.Fatalf("first run yields\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		// Nothing changed: everything comes from the cache.
		stats, got = prepareAndCommit(t, d, st.Snapshot(), site, cache)
		if stats.Cold || stats.ReadBlocks != 0 || stats.CachedBlocks != 6 {
			t.Fatalf("unchanged: %+v, want all 6 blocks cached", stats)
		}
		if want := coldSide(t, d, st.Snapshot(), site); !slices.Equal(got, want) {
			t.Fatalf("unchanged run yields\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		// A week of changes: b0 gains a file, b1 leaves T2_A, b6 arrives at
		// T2_A, the incomplete b5 gets a second file, b2 is marked for
		// deletion, b6's replica at T2_B (another site) changes.
		snap := st.Snapshot()
		blk := func(n string) inventory.Block { b, _ := snap.BlockByName("/P/R-v1/AOD#" + n); return b }
		siteB, _ := snap.SiteByName("T2_B")
		grp, _ := snap.GroupByName("G")
		at := time.Unix(2e9, 0)
		_, err := st.Write(ctx, at, func(tx *inventory.Txn) error {
			b0 := blk("b0")
			nf := inventory.File{ID: tx.NewFileID(), Block: b0.ID, LFN: "/store/d/0/new-0", Size: 7}
			b0.NumFiles++
			b0.Size += 7
			r0, _ := tx.BlockReplica(b0.ID, site)
			r0.NumFiles, r0.Size, r0.LastUpdate = b0.NumFiles, b0.Size, at.Unix()
			r5, _ := tx.BlockReplica(blk("b5").ID, site)
			r5.NumFiles, r5.LastUpdate = 2, at.Unix()
			r2, _ := tx.BlockReplica(blk("b2").ID, site)
			r2.PendingDeletion = true
			r6b, _ := tx.BlockReplica(blk("b6").ID, siteB.ID)
			r6b.LastUpdate = at.Unix()
			f5 := fileID(t, d, "/store/d/2/f2-5")
			return tx.Add(
				inventory.UpsertBlock{Block: b0},
				inventory.UpsertFiles{Block: b0.ID, Files: []inventory.File{nf}},
				inventory.UpsertBlockReplica{BlockReplica: r0},
				inventory.DeleteBlockReplica{Block: blk("b1").ID, Site: site},
				inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: blk("b6").ID, Site: site, Group: grp.ID, Complete: true, Size: blk("b6").Size, NumFiles: 3, LastUpdate: at.Unix()}},
				inventory.SetReplicaFiles{Block: blk("b5").ID, Site: site, Add: []inventory.FileID{f5}},
				inventory.UpsertBlockReplica{BlockReplica: r5},
				inventory.UpsertBlockReplica{BlockReplica: r2},
				inventory.UpsertBlockReplica{BlockReplica: r6b},
			)
		})
		if err != nil {
			t.Fatal(err)
		}
		stats, got = prepareAndCommit(t, d, st.Snapshot(), site, cache)
		// Read: b0 (files), b2 (replica), b5 (replica files), b6 (new here).
		// Cached: b3, b4. Gone: b1.
		if stats.Cold || stats.ReadBlocks != 4 || stats.CachedBlocks != 2 {
			t.Fatalf("after changes: %+v, want 4 blocks read and 2 cached", stats)
		}
		want := coldSide(t, d, st.Snapshot(), site)
		if !slices.Equal(got, want) {
			t.Fatalf("after changes yields\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "/store/d/0/new-0 ") }) {
			t.Errorf("the new file of b0 is missing:\n%s", strings.Join(got, "\n"))
		}
	})
}

func fileID(t *testing.T, d *db.DB, lfn string) inventory.FileID {
	t.Helper()
	var id inventory.FileID
	if err := d.GetContext(context.Background(), &id, "SELECT id FROM files WHERE lfn = ?", lfn); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestInventoryCacheDistrust: a cache is not used when it cannot be shown
// to match the database: another database (the change it was written at
// differs), a restored one (it is ahead), a gap in the change log, a
// corrupt description, another site's cache; and a run that did not commit
// leaves the previous cache intact.
func TestInventoryCacheDistrust(t *testing.T) {
	d := testdb.SQLite(t)
	ctx := context.Background()
	st, site := cacheFixture(t, d)
	cache := filepath.Join(t.TempDir(), "cache")
	prepareAndCommit(t, d, st.Snapshot(), site, cache)
	seq := st.Snapshot().Seq()

	prepare := func() consistency.PrepareStats {
		t.Helper()
		p, err := consistency.PrepareExpected(ctx, d, st.Snapshot(), site, cache, t.TempDir(), consistency.ExtractOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p.Stats
	}
	expectCold := func(what, reason string) {
		t.Helper()
		if s := prepare(); !s.Cold || !strings.Contains(s.Reason, reason) {
			t.Errorf("%s: %+v, want cold because %q", what, s, reason)
		}
	}
	if s := prepare(); s.Cold {
		t.Fatalf("fresh cache not used: %+v", s)
	}

	// A prepared and opened run that fails (never commits) changes nothing.
	p, err := consistency.PrepareExpected(ctx, d, st.Snapshot(), site, cache, t.TempDir(), consistency.ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Open(st.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	s.Next()
	s.Close()
	p.Abandon()
	if s := prepare(); s.Cold {
		t.Fatalf("cache lost by an abandoned run: %+v", s)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "*.tmp")); len(left) > 0 {
		t.Errorf("abandoned run left %v", left)
	}

	// A cache file damaged on disk fails the run that reads it, and the
	// next run does not trust the cache.
	files, _ := filepath.Glob(filepath.Join(cache, "expected-*.bin"))
	if len(files) == 0 {
		t.Fatal("no cache files")
	}
	saved, _ := os.ReadFile(files[0])
	os.WriteFile(files[0], append(slices.Clone(saved[:len(saved)-3]), 0xff, 0xff, 0xff), 0o644)
	p, err = consistency.PrepareExpected(ctx, d, st.Snapshot(), site, cache, t.TempDir(), consistency.ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s, err = p.Open(st.Snapshot()); err == nil {
		for s.Next() {
		}
		err = s.Err()
		s.Close()
	}
	if err == nil {
		t.Fatal("damaged cache file read without error")
	}
	p.Abandon()
	expectCold("damaged", "no cache yet")
	prepareAndCommit(t, d, st.Snapshot(), site, cache) // a good cache again
	seq = st.Snapshot().Seq()

	// Another database: the change the cache was tagged with differs.
	if _, err := d.ExecContext(ctx, "UPDATE inventory_changes SET at = at + 1 WHERE seq = ?", seq); err != nil {
		t.Fatal(err)
	}
	expectCold("other database", "not the one the cache was written at")
	if _, err := d.ExecContext(ctx, "UPDATE inventory_changes SET at = at - 1 WHERE seq = ?", seq); err != nil {
		t.Fatal(err)
	}

	// A gap in the log after the cache: a change since then was lost.
	for _, g := range []string{"H", "I"} {
		if _, err := st.Write(ctx, time.Unix(2e9, 0), func(tx *inventory.Txn) error {
			return tx.Add(inventory.UpsertGroup{Group: inventory.Group{ID: tx.NewGroupID(), Name: g, Level: inventory.OwnDataset}})
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.ExecContext(ctx, "DELETE FROM inventory_changes WHERE seq = ?", seq+1); err != nil {
		t.Fatal(err)
	}
	expectCold("gap", "change log has 1 of the 2 changes")

	// The description is corrupt, or of another site.
	meta := filepath.Join(cache, "meta.json")
	good, _ := os.ReadFile(meta)
	os.WriteFile(meta, []byte("{"), 0o644)
	expectCold("corrupt", "unreadable cache")
	os.WriteFile(meta, []byte(strings.Replace(string(good), fmt.Sprintf(`"site_id": %d`, site), `"site_id": 999`, 1)), 0o644)
	expectCold("other site", "cache is of site 999")

	// Ahead of the inventory: a database restored from a backup.
	os.WriteFile(meta, []byte(strings.Replace(string(good), fmt.Sprintf(`"seq": %d`, seq), `"seq": 99999`, 1)), 0o644)
	expectCold("restored", "ahead of the inventory")
}
