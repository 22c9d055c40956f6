package consistency_test

import (
	"context"
	"testing"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// Temporary uploads left at a site (an interrupted transfer's
// .dynamo-tmp.* file) are listed and reported as their own class, with
// their count in the run record: never as orphans (deleting one could cut
// a running transfer short), never hidden. A directory holding only one
// is not empty.
func TestTemporaryUploadsAreReportedAsSuch(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		dir := t.TempDir()
		s := site{url: "file://" + dir, data: dir}
		st := setup(t, d, s)
		plantSite(t, s)
		s.plant(t, "/store/mc/a/.dynamo-tmp.1234567", 5, 30*day)
		s.plant(t, "/store/mc/killed/.dynamo-tmp.89", 3, 30*day)
		cfg := testConfig(t)
		c, err := consistency.New(cfg, d, st, dealerActs(t), s.opts, nil, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Run(context.Background(), "T2_A", true)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != consistency.StatusDone || r.Temporary != 2 {
			t.Fatalf("run: %+v; want 2 temporary uploads", r)
		}
		// The same orphans as without the temporary files.
		checkEqual(t, "orphans", lfns(readList[consistency.Difference](t, r, cfg, consistency.ListOrphans)),
			[]string{"/store/mc/a/graceful.root", "/store/mc/old/orphan.root"})
		var paths []string
		for _, f := range readList[consistency.TempFile](t, r, cfg, consistency.ListTemporary) {
			paths = append(paths, f.Path)
		}
		checkEqual(t, "temporary", paths, []string{"/store/mc/a/.dynamo-tmp.1234567", "/store/mc/killed/.dynamo-tmp.89"})
		for _, e := range readList[consistency.EmptyDir](t, r, cfg, consistency.ListEmptyDirs) {
			if e.Path == "/store/mc/killed" {
				t.Errorf("a directory holding a temporary upload is reported empty")
			}
		}
		got, err := consistency.GetRun(context.Background(), d, r.ID)
		if err != nil || got.Temporary != 2 {
			t.Errorf("stored run: %+v %v; want temporary 2", got, err)
		}
	})
}
