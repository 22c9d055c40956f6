package fileop_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testservers"
	"github.com/dynamo-go/dynamo/inventory"
)

// moveSite points a site's storage at url.
func (e *env) moveSite(t *testing.T, s inventory.Site, url string) {
	t.Helper()
	s.Backend = url
	if _, err := e.store.Write(context.Background(), t0, func(tx *inventory.Txn) error { return tx.Add(inventory.UpsertSite{Site: s}) }); err != nil {
		t.Fatal(err)
	}
}

// TestNativeToWebDAV: the native engine streams file:// -> WebDAV (real
// Apache mod_dav), then deletes there.
func TestNativeToWebDAV(t *testing.T) {
	srv := testservers.Apache(t, testservers.ApacheOptions{})
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 6, 5000)
		ctx := context.Background()
		prefix := "run-" + string(d.Dialect)
		e.moveSite(t, e.fed.Dst, srv.URL+prefix)
		// A site's namespace exists before transfers arrive. (Creating it
		// from several concurrent Puts races in Apache: a losing MKCOL may
		// get 403, which the driver rightly calls irrecoverable.)
		dav, err := driver.Open(ctx, srv.URL+prefix, driver.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := dav.Mkdir(ctx, "store/fed/000"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, testConfig(), fileop.Options{}, 30*time.Second)
		if got := e.count(t, "state = 'done'"); got != 6 {
			h, _ := fileop.History(ctx, d, 0, 20)
			t.Fatalf("%d done, want 6; history %+v", got, h)
		}
		for _, f := range e.fed.Files {
			sameFile(t, filepath.Join(e.fed.SrcDir, f.LFN), filepath.Join(srv.DataDir, prefix, f.LFN))
		}
		if rep, _ := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Dst.ID); !rep.Complete {
			t.Fatalf("replica %+v not complete", rep)
		}
		if _, err := e.fed.QueueDelete(ctx, t0, e.fed.Dst.ID); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, testConfig(), fileop.Options{}, 30*time.Second)
		for _, f := range e.fed.Files {
			if _, err := os.Stat(filepath.Join(srv.DataDir, prefix, f.LFN)); !os.IsNotExist(err) {
				t.Fatalf("%s not deleted from the WebDAV server: %v", f.LFN, err)
			}
		}
		if _, ok := e.store.Snapshot().BlockReplica(e.fed.Block, e.fed.Dst.ID); ok {
			t.Fatal("replica still present")
		}
	})
}

// TestGfal2Backend runs the real gfal-copy / gfal-rm over file://.
func TestGfal2Backend(t *testing.T) {
	testservers.Need(t, "gfal-copy")
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, 3, 2000)
		ctx := context.Background()
		missing := e.fed.Files[2]
		if err := os.Remove(filepath.Join(e.fed.SrcDir, missing.LFN)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.Backend = "gfal2"
		cfg.Gfal2.Workers = 3
		cfg.Gfal2.Timeout = time.Minute
		e.runUntil(t, cfg, fileop.Options{}, 90*time.Second)
		if got := e.count(t, "state = 'done'"); got != 2 {
			t.Fatalf("%d done, want 2", got)
		}
		for _, f := range e.fed.Files[:2] {
			sameFile(t, filepath.Join(e.fed.SrcDir, f.LFN), filepath.Join(e.fed.DstDir, f.LFN))
		}
		if e.historyCount(t, "backend = 'gfal2' AND outcome = 'done' AND checksum = 'ok'") != 2 {
			t.Fatal("gfal2 successes not recorded with a checked checksum")
		}
		// The missing source: gfal2's errno 2 is irrecoverable -> held.
		if e.historyCount(t, "backend = 'gfal2' AND outcome = 'failed' AND code = 'errno 2' AND exit_code <> 0") != 1 {
			h, _ := fileop.History(ctx, d, 0, 10)
			t.Fatalf("missing source not classified by errno: %+v", h)
		}
		if e.count(t, "state = 'held' AND hold_reason = 'all_failed'") != 1 {
			t.Fatal("missing-source file not held")
		}
		if _, err := e.fed.QueueDelete(ctx, t0, e.fed.Dst.ID); err != nil {
			t.Fatal(err)
		}
		e.runUntil(t, cfg, fileop.Options{}, 90*time.Second)
		if e.count(t, "op = 'deletion' AND state = 'done'") != 2 {
			t.Fatal("gfal-rm deletions not done")
		}
		if _, err := os.Stat(filepath.Join(e.fed.DstDir, e.fed.Files[0].LFN)); !os.IsNotExist(err) {
			t.Fatalf("file not removed by gfal-rm: %v", err)
		}
	})
}

// TestNativeThirdPartyCopy: with native.tpc on and both ends speaking
// HTTP, the destination (XrdHttp) pulls each file from the source
// (Apache) itself (WLCG COPY with a Source header); the engine then checks
// the destination's adler32 (XrdHttp answers Want-Digest).
func TestNativeThirdPartyCopy(t *testing.T) {
	src := testservers.Apache(t, testservers.ApacheOptions{})
	dst := testservers.XRootD(t, testservers.XRootDOptions{HTTP: true})
	d := testdb.SQLite(t)
	e := setup(t, d, 4, 20000)
	ctx := context.Background()
	sd, err := driver.Open(ctx, src.URL, driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range e.fed.Files {
		fh, err := os.Open(filepath.Join(e.fed.SrcDir, f.LFN))
		if err != nil {
			t.Fatal(err)
		}
		err = sd.Put(ctx, f.LFN, fh, f.Size)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	e.moveSite(t, e.fed.Src, strings.TrimSuffix(src.URL, "/"))
	e.moveSite(t, e.fed.Dst, strings.TrimSuffix(dst.HTTPURL, "/"))
	if _, err := e.fed.QueueCopy(ctx, t0, 0); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Native.TPC = true
	cfg.Driver.CACertDir = dst.PKI.CertDir
	e.runUntil(t, cfg, fileop.Options{}, 60*time.Second)
	if n := e.historyCount(t, "outcome = 'done' AND mode = 'tpc' AND checksum = 'ok'"); n != 4 {
		h, _ := fileop.History(ctx, d, 0, 10)
		t.Fatalf("%d third-party copies done with a verified checksum, want 4: %+v", n, h)
	}
	for _, f := range e.fed.Files {
		sameFile(t, filepath.Join(e.fed.SrcDir, f.LFN), filepath.Join(dst.DataDir, f.LFN))
	}
}
