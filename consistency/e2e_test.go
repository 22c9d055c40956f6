package consistency_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/fileop/driver"
	_ "github.com/dynamo-go/dynamo/fileop/driver/all"
	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testservers"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/scheduler"
	srmse "github.com/dynamo-go/dynamo/srm"
)

// site is a storage site under test: its URL and the local directory the
// server serves, where the test plants files with chosen times.
type site struct {
	url  string
	data string
	opts driver.Options
}

func testLog(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(tWriter{t})
	l.SetLevel(logrus.WarnLevel)
	return l.WithField("component", "consistency")
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

var now = time.Now()

// plant writes a file of size bytes below s.data with mtime age ago, with
// its parents, owned like the data directory (servers run unprivileged).
func (s site) plant(t *testing.T, lfn string, size int, age time.Duration) {
	t.Helper()
	p := filepath.Join(s.data, lfn)
	s.mkdir(t, filepath.Dir(lfn))
	if err := os.WriteFile(p, []byte(strings.Repeat("x", size)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.own(t, p)
	if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
		t.Fatal(err)
	}
}

func (s site) mkdir(t *testing.T, dir string) {
	t.Helper()
	rel := strings.Split(strings.Trim(dir, "/"), "/")
	p := s.data
	for _, e := range rel {
		p = filepath.Join(p, e)
		if err := os.Mkdir(p, 0o755); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
		s.own(t, p)
	}
}

func (s site) own(t *testing.T, p string) {
	st, err := os.Stat(s.data)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	os.Lchown(p, int(sys.Uid), int(sys.Gid))
}

func (s site) exists(lfn string) bool {
	_, err := os.Stat(filepath.Join(s.data, lfn))
	return err == nil
}

const day = 24 * time.Hour

// setup injects a dataset of two blocks at T2_A (whose backend is s.url)
// into a fresh inventory, replicas dated 30 days ago.
func setup(t *testing.T, d *db.DB, s site) *inventory.Store {
	t.Helper()
	st, err := inventory.Load(context.Background(), d, testLog(t), nil, now.Add(-30*day))
	if err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`{
 "sites": [{"name": "T2_A", "storage_type": "disk", "status": "ready", "backend": %q, "quotas": {"Default": 100000}}],
 "groups": [{"name": "AnalysisOps", "olevel": "dataset"}],
 "datasets": [{"name": "/P/R-v1/AOD", "status": "valid", "data_type": "mc", "is_open": false,
   "blocks": [
     {"name": "b1", "files": [
       {"lfn": "/store/mc/a/f1.root", "size": 10}, {"lfn": "/store/mc/a/f2.root", "size": 10},
       {"lfn": "/store/mc/a/f3.root", "size": 10}, {"lfn": "/store/mc/a/f4.root", "size": 10},
       {"lfn": "/store/mc/a/f5.root", "size": 10}]},
     {"name": "b2", "files": [{"lfn": "/store/mc/b/g1.root", "size": 20}, {"lfn": "/store/mc/b/g2.root", "size": 20}]},
     {"name": "b3", "files": [{"lfn": "/store/data/elsewhere.root", "size": 20}]},
     {"name": "c1", "files": [{"lfn": "/store/mc/c/h1.root", "size": 30}, {"lfn": "/store/mc/c/h2.root", "size": 30},
       {"lfn": "/store/mc/c/h3.root", "size": 30}]}]}],
 "dataset_replicas": [{"dataset": "/P/R-v1/AOD", "site": "T2_A", "group": "AnalysisOps", "growing": false, "blocks": ["b1", "b2", "b3"]}],
 "block_replicas": [{"block": "/P/R-v1/AOD#c1", "site": "T2_A", "group": "AnalysisOps", "files": ["/store/mc/c/h1.root", "/store/mc/c/h2.root"]}]
}`, s.url)
	idoc, err := inventory.DecodeInjectDoc(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Inject(context.Background(), now.Add(-30*day), idoc); err != nil {
		t.Fatal(err)
	}
	return st
}

// plantSite lays out the site: f4 missing, f5 the wrong size, an old
// orphan, an orphan within grace, a young file, an ignored file, an old
// empty directory; of the incomplete replica of c1 (h1 and h2 present,
// h3 still to come), h2 is missing.
func plantSite(t *testing.T, s site) {
	for _, f := range []string{"f1", "f2", "f3"} {
		s.plant(t, "/store/mc/a/"+f+".root", 10, 30*day)
	}
	s.plant(t, "/store/mc/a/f5.root", 11, 30*day)
	s.plant(t, "/store/mc/b/g1.root", 20, 30*day)
	s.plant(t, "/store/mc/b/g2.root", 20, 30*day)
	s.plant(t, "/store/mc/c/h1.root", 30, 30*day)
	s.plant(t, "/store/mc/old/orphan.root", 7, 30*day)
	s.plant(t, "/store/mc/a/graceful.root", 7, 3*day)
	s.plant(t, "/store/mc/a/young.root", 7, 10*time.Minute)
	s.plant(t, "/store/mc/a/job.tmp", 7, 30*day)
	s.mkdir(t, "/store/mc/empty/sub")
	for _, d := range []string{"/store/mc/empty/sub", "/store/mc/empty"} {
		os.Chtimes(filepath.Join(s.data, d), now.Add(-30*day), now.Add(-30*day))
	}
}

// dealerActs is the file-operation queue as the scenario starts: the
// transfer of h3 to the incomplete replica of c1 is in flight (queued by
// whoever made the replica).
func dealerActs(t *testing.T) *consistency.MemActions {
	a := consistency.NewMemActions()
	if err := a.QueueTransfers(context.Background(), "T2_A", []consistency.Transfer{{LFN: "/store/mc/c/h3.root", Size: 30}}); err != nil {
		t.Fatal(err)
	}
	return a
}

func snap0(st *inventory.Store) *inventory.Snapshot { return st.Snapshot() }

func testConfig(t *testing.T) consistency.Config {
	c := consistency.DefaultConfig()
	c.WorkDir = t.TempDir()
	c.MinAge = time.Hour
	c.OrphanGrace = 7 * day
	c.Ignore = []string{"*.tmp"}
	c.MaxMissingFraction, c.MaxOrphanFraction = 1, 1
	c.MaxMissing, c.MaxOrphans = 10, 10
	c.RetryWait = 10 * time.Millisecond
	c.Sites = map[string]consistency.SiteConfig{"T2_A": {Paths: []string{"/store/mc"}}}
	return c
}

func readList[T any](t *testing.T, rec *consistency.RunRecord, cfg consistency.Config, list string) []T {
	t.Helper()
	f, err := os.Open(filepath.Join(cfg.WorkDir, rec.Site, fmt.Sprint(rec.ID), "report", list+".ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func lfns(ds []consistency.Difference) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.LFN)
	}
	return out
}

func checkEqual[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

// scenario runs the checker three times against a planted site and checks
// classification, the two-run confirmation, the actions and the inventory.
func scenario(t *testing.T, d *db.DB, s site) {
	ctx := context.Background()
	st := setup(t, d, s)
	plantSite(t, s)
	cfg := testConfig(t)
	acts := dealerActs(t)
	c, err := consistency.New(cfg, d, st, acts, s.opts, nil, testLog(t))
	if err != nil {
		t.Fatal(err)
	}

	// Run 1: everything classified; only the old orphan and the empty
	// directories are acted on (missing files wait for confirmation).
	r1, err := c.Run(ctx, "T2_A", false)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Status != consistency.StatusDone || r1.Missing != 2 || r1.SizeMismatch != 1 || r1.Orphans != 2 || r1.Matched != 6 || r1.Skipped != 3 || r1.ExpectedFiles != 10 {
		t.Fatalf("run 1: %+v", r1)
	}
	checkEqual(t, "missing", lfns(readList[consistency.Difference](t, r1, cfg, consistency.ListMissing)), []string{"/store/mc/a/f4.root", "/store/mc/c/h2.root"})
	checkEqual(t, "size mismatch", lfns(readList[consistency.Difference](t, r1, cfg, consistency.ListSizeMismatch)), []string{"/store/mc/a/f5.root"})
	checkEqual(t, "orphans", lfns(readList[consistency.Difference](t, r1, cfg, consistency.ListOrphans)), []string{"/store/mc/a/graceful.root", "/store/mc/old/orphan.root"})
	if r1.TransfersQueued != 0 || len(acts.Transfers("T2_A")) != 1 {
		t.Errorf("run 1 queued transfers before confirmation: %v", acts.Transfers("T2_A"))
	}
	checkEqual(t, "deletions", acts.Deletions("T2_A"), []consistency.Deletion{{LFN: "/store/mc/old/orphan.root", Size: 7}})
	if s.exists("/store/mc/empty/sub") || r1.DirsRemoved != 1 {
		t.Errorf("empty directory not removed (removed %d)", r1.DirsRemoved)
	}
	if !s.exists("/store/mc/empty") {
		t.Errorf("parent of the empty directory removed in the same run")
	}

	// Run 2: the missing and the corrupt file are confirmed: the replica
	// loses them and transfers are queued. The orphan whose deletion is
	// queued is in flight and not reported again.
	r2, err := c.Run(ctx, "T2_A", false)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Orphans != 1 || r2.TransfersQueued != 3 || r2.ReplicasUpdated != 2 {
		t.Fatalf("run 2: %+v", r2)
	}
	tr := acts.Transfers("T2_A")[1:] // after h3's, queued by the dealer
	if len(tr) != 3 || tr[0].LFN != "/store/mc/a/f4.root" || tr[0].Overwrite || tr[1].LFN != "/store/mc/c/h2.root" || tr[2].LFN != "/store/mc/a/f5.root" || !tr[2].Overwrite {
		t.Errorf("transfers: %+v", tr)
	}
	// The incomplete replica loses h2 and keeps h1 (h3 was never there).
	c1, _ := snap0(st).BlockByName("/P/R-v1/AOD#c1")
	cr, _ := st.Snapshot().BlockReplica(c1.ID, 1)
	if cr.Complete || cr.Size != 30 || cr.NumFiles != 1 {
		t.Errorf("replica of c1 after run 2: %+v, want incomplete 30 bytes 1 file", cr)
	}
	if ids, err := st.ReplicaFileIDs(ctx, c1.ID, 1); err != nil || len(ids) != 1 {
		t.Errorf("replica files of c1: %v %v", ids, err)
	}
	snap := st.Snapshot()
	b1, _ := snap.BlockByName("/P/R-v1/AOD#b1")
	br, _ := snap.BlockReplica(b1.ID, 1)
	if br.Complete || br.Size != 30 || br.NumFiles != 3 {
		t.Errorf("replica of b1 after run 2: %+v, want incomplete 30 bytes 3 files", br)
	}
	ids, err := st.ReplicaFileIDs(ctx, b1.ID, 1)
	if err != nil || len(ids) != 3 {
		t.Errorf("replica files of b1: %v %v", ids, err)
	}

	// Run 3, two hours later: the daemon lost the queued transfers (and
	// removed the orphan). The files the replicas now lack are stalled
	// (f5 too: its corrupt copy is still there): their transfers are
	// queued again, the inventory is left alone.
	acts.Complete("T2_A")
	os.Remove(filepath.Join(s.data, "store/mc/old/orphan.root"))
	c.Now = func() time.Time { return now.Add(2 * time.Hour) }
	r3, err := c.Run(ctx, "T2_A", false)
	if err != nil {
		t.Fatal(err)
	}
	if r3.Missing != 0 || r3.SizeMismatch != 0 || r3.Stalled != 4 || r3.TransfersQueued != 4 || r3.ReplicasUpdated != 0 {
		t.Errorf("run 3: %+v", r3)
	}
	checkEqual(t, "stalled", lfns(readList[consistency.Difference](t, r3, cfg, consistency.ListStalled)),
		[]string{"/store/mc/a/f4.root", "/store/mc/a/f5.root", "/store/mc/c/h2.root", "/store/mc/c/h3.root"})
	if tr := acts.Transfers("T2_A"); len(tr) != 4 || !tr[1].Overwrite || tr[0].Overwrite {
		t.Errorf("run 3 transfers (f5's corrupt copy must be overwritten): %+v", tr)
	}
	// Run 4: the transfers are in flight: nothing is stalled, nothing queued.
	r4, err := c.Run(ctx, "T2_A", false)
	if err != nil {
		t.Fatal(err)
	}
	if r4.Stalled != 0 || r4.Missing != 0 || r4.TransfersQueued != 0 {
		t.Errorf("run 4: %+v", r4)
	}
}

func TestEndToEndFile(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		dir := t.TempDir()
		scenario(t, d, site{url: "file://" + dir, data: dir})
	})
}

func TestEndToEndWebDAVApache(t *testing.T) {
	s := testservers.Apache(t, testservers.ApacheOptions{})
	scenario(t, testdb.SQLite(t), site{url: "dav" + strings.TrimSuffix(s.URL[len("http"):], "/"), data: s.DataDir})
}

// TestEndToEndSRM runs the scenario against the embedded SRM SE, started
// in this process, through the srm:// driver.
func TestEndToEndSRM(t *testing.T) {
	pki := testservers.NewPKI(t)
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := srmse.QuickStart(root, "127.0.0.1:0", "127.0.0.1:0", pki.HostCert, pki.HostKey, pki.CertDir)
	if err != nil {
		t.Fatal(err)
	}
	se, err := srmse.New(cfg, testdb.SQLite(t), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- se.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-se.Ready():
	case err := <-done:
		t.Fatalf("SE did not start: %v", err)
	}
	a := se.SRMAddr().String()
	url := "srm://localhost:" + a[strings.LastIndexByte(a, ':')+1:] + "/"
	scenario(t, testdb.SQLite(t), site{url: url, data: root, opts: driver.Options{Proxy: pki.UserCred, CACertDir: pki.CertDir}})
}

func TestEndToEndXRootD(t *testing.T) {
	testservers.Need(t, "xrdfs")
	s := testservers.XRootD(t, testservers.XRootDOptions{})
	scenario(t, testdb.SQLite(t), site{url: s.URL, data: s.DataDir})
}

// TestSafetyValve: a run whose orphans exceed the limit deletes nothing
// and raises an alert; so does one whose missing fraction is too high.
func TestSafetyValve(t *testing.T) {
	ctx := context.Background()
	d := testdb.SQLite(t)
	dir := t.TempDir()
	s := site{url: "file://" + dir, data: dir}
	st := setup(t, d, s)
	plantSite(t, s)
	for _, tc := range []struct {
		name string
		mod  func(*consistency.Config)
		want string
	}{
		{"orphans", func(c *consistency.Config) { c.MaxOrphans = 1 }, "2 orphans exceed max_orphans 1"},
		{"orphan fraction", func(c *consistency.Config) { c.MaxOrphanFraction = 0.1 }, "max_orphan_fraction"},
		{"missing fraction", func(c *consistency.Config) { c.MaxMissingFraction = 0.2 }, "3 missing, corrupt or stalled of 10 expected files exceed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.mod(&cfg)
			acts := dealerActs(t)
			c, err := consistency.New(cfg, d, st, acts, driver.Options{}, nil, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Run(ctx, "T2_A", false)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != consistency.StatusAlert || !strings.Contains(r.Message, tc.want) {
				t.Errorf("status %s message %q, want alert with %q", r.Status, r.Message, tc.want)
			}
			if len(acts.Deletions("T2_A")) != 0 || r.DeletionsQueued != 0 || !s.exists("/store/mc/empty/sub") {
				t.Errorf("a stopped run acted: %v", acts.Deletions("T2_A"))
			}
		})
	}
}

// TestDryRun: a dry run lists what it would do and does nothing.
func TestDryRun(t *testing.T) {
	ctx := context.Background()
	d := testdb.SQLite(t)
	dir := t.TempDir()
	s := site{url: "file://" + dir, data: dir}
	st := setup(t, d, s)
	plantSite(t, s)
	cfg := testConfig(t)
	acts := dealerActs(t)
	c, err := consistency.New(cfg, d, st, acts, driver.Options{}, nil, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Run(ctx, "T2_A", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(acts.Deletions("T2_A")) != 0 || !s.exists("/store/mc/empty/sub") || r.DirsRemoved != 0 {
		t.Errorf("dry run acted")
	}
	var acted []string
	for _, it := range readList[consistency.PlanItem](t, r, cfg, consistency.ListActions) {
		if it.Action != consistency.ActNone {
			acted = append(acted, it.Action+" "+it.Path)
		}
	}
	checkEqual(t, "planned", acted, []string{"delete /store/mc/old/orphan.root", "rmdir /store/mc/empty/sub"})
}

// TestRoutes: the REST surface serves runs and their lists.
func TestRoutes(t *testing.T) {
	ctx := context.Background()
	d := testdb.SQLite(t)
	dir := t.TempDir()
	s := site{url: "file://" + dir, data: dir}
	st := setup(t, d, s)
	plantSite(t, s)
	cfg := testConfig(t)
	c, err := consistency.New(cfg, d, st, dealerActs(t), driver.Options{}, prometheus.NewRegistry(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Run(ctx, "T2_A", false)
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.TestMode)
	eng := gin.New()
	eng.Use(apierr.Middleware(nil, 0))
	consistency.Routes(eng.Group("/api/v1/consistency"), c)
	get := func(path string) (int, string) {
		w := httptest.NewRecorder()
		eng.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w.Code, w.Body.String()
	}
	code, body := get(fmt.Sprintf("/api/v1/consistency/runs/%d", r.ID))
	if code != 200 || !strings.Contains(body, `"missing":2`) || !strings.Contains(body, `"orphans"`) {
		t.Errorf("run: %d %s", code, body)
	}
	code, body = get(fmt.Sprintf("/api/v1/consistency/runs/%d/lists/orphans", r.ID))
	if code != 200 || strings.Count(body, "\n") != 2 || !strings.Contains(body, `"lfn":"/store/mc/old/orphan.root"`) {
		t.Errorf("orphans list: %d %s", code, body)
	}
	if code, _ = get("/api/v1/consistency/runs/999/lists/orphans"); code != 404 {
		t.Errorf("unknown run: %d", code)
	}
	if code, _ = get(fmt.Sprintf("/api/v1/consistency/runs/%d/lists/passwd", r.ID)); code != 400 {
		t.Errorf("bad list name: %d", code)
	}
	code, body = get("/api/v1/consistency/sites")
	if code != 200 || !strings.Contains(body, `"site":"T2_A"`) || !strings.Contains(body, `"status":"done"`) {
		t.Errorf("sites: %d %s", code, body)
	}
}

// TestSchedulerApps: one application per configured site; --dry-run is
// passed through, other arguments are refused, a tripped valve fails the run.
func TestSchedulerApps(t *testing.T) {
	d := testdb.SQLite(t)
	dir := t.TempDir()
	s := site{url: "file://" + dir, data: dir}
	st := setup(t, d, s)
	plantSite(t, s)
	cfg := testConfig(t)
	acts := dealerActs(t)
	c, err := consistency.New(cfg, d, st, acts, driver.Options{}, nil, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	apps := c.Apps()
	if len(apps) != 1 || apps[0].Name != "consistency:T2_A" || apps[0].Writer {
		t.Fatalf("apps: %+v", apps)
	}
	ctx := context.Background()
	if err := apps[0].Run(ctx, &scheduler.Env{Args: []string{"--force"}}); err == nil {
		t.Error("unknown argument accepted")
	}
	if err := apps[0].Run(ctx, &scheduler.Env{Args: []string{"--dry-run"}}); err != nil {
		t.Fatal(err)
	}
	if len(acts.Deletions("T2_A")) != 0 {
		t.Error("--dry-run acted")
	}
	runs, _ := consistency.ListRuns(ctx, d, "T2_A", 10)
	if len(runs) != 1 || !runs[0].DryRun {
		t.Errorf("runs: %+v", runs)
	}
}

// unavailable fails every listing with a recoverable error.
type unavailable struct{ driver.Driver }

func (unavailable) List(ctx context.Context, dir string, fn driver.ListFunc) error {
	return &driver.Error{Op: "list", URL: dir, Kind: driver.ErrUnavailable}
}

// TestInterruptedRunResumes: a run whose listing fails recoverably (the
// site unavailable past the retries) stays "running", and the next run of
// the site continues it (same id) to the result of an uninterrupted run.
func TestInterruptedRunResumes(t *testing.T) {
	d := testdb.SQLite(t)
	dir := t.TempDir()
	s := site{url: "file://" + dir, data: dir}
	st := setup(t, d, s)
	plantSite(t, s)
	cfg := testConfig(t)
	cfg.Retries = 1
	c, err := consistency.New(cfg, d, st, dealerActs(t), driver.Options{}, nil, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	consistency.WrapDriver(c, func(d driver.Driver) driver.Driver { return unavailable{d} })
	r1, err := c.Run(context.Background(), "T2_A", true)
	if err == nil || r1 == nil || r1.Status != consistency.StatusRunning || !strings.Contains(r1.Message, "unavailable") {
		t.Fatalf("failed run: %+v %v", r1, err)
	}
	consistency.WrapDriver(c, func(d driver.Driver) driver.Driver { return d })
	r2, err := c.Run(context.Background(), "T2_A", true)
	if err != nil {
		t.Fatal(err)
	}
	if r2.ID != r1.ID || r2.Status != consistency.StatusDone || r2.Missing != 2 || r2.Orphans != 2 || r2.Message != "" {
		t.Errorf("resumed run: %+v", r2)
	}
	// An irrecoverable failure ends the run: the next one starts afresh.
	consistency.WrapDriver(c, func(d driver.Driver) driver.Driver { return denied{d} })
	r3, err := c.Run(context.Background(), "T2_A", true)
	if err == nil || r3.Status != consistency.StatusFailed {
		t.Fatalf("denied run: %+v %v", r3, err)
	}
}

type denied struct{ driver.Driver }

func (denied) List(ctx context.Context, dir string, fn driver.ListFunc) error {
	return &driver.Error{Op: "list", URL: dir, Kind: driver.ErrPermission}
}

// transfersOnly is an Actions that cannot queue orphan deletions (like the
// file-operation daemon, whose queue holds inventory files only).
type transfersOnly struct{ m *consistency.MemActions }

func (a transfersOnly) QueueTransfers(ctx context.Context, site string, f []consistency.Transfer) error {
	return a.m.QueueTransfers(ctx, site, f)
}

func (a transfersOnly) InFlight(ctx context.Context, site string) (map[string]struct{}, error) {
	return a.m.InFlight(ctx, site)
}

// TestDirectOrphanRemoval: without a DeletionQueuer the checker deletes old
// orphans itself through the driver; orphans within grace stay.
func TestDirectOrphanRemoval(t *testing.T) {
	d := testdb.SQLite(t)
	dir := t.TempDir()
	s := site{url: "file://" + dir, data: dir}
	st := setup(t, d, s)
	plantSite(t, s)
	cfg := testConfig(t)
	c, err := consistency.New(cfg, d, st, transfersOnly{dealerActs(t)}, driver.Options{}, nil, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Run(context.Background(), "T2_A", false)
	if err != nil {
		t.Fatal(err)
	}
	if r.DeletionsQueued != 1 || s.exists("/store/mc/old/orphan.root") || !s.exists("/store/mc/a/graceful.root") {
		t.Errorf("direct removal: %d deleted, orphan there %v, graceful there %v", r.DeletionsQueued, s.exists("/store/mc/old/orphan.root"), s.exists("/store/mc/a/graceful.root"))
	}
	// A dry run deletes nothing, with or without a queue.
	plantSite(t, s)
	if _, err := c.Run(context.Background(), "T2_A", true); err != nil || !s.exists("/store/mc/old/orphan.root") {
		t.Errorf("dry run deleted (err %v)", err)
	}
}

// TestOrphanLastCopyKept: an old orphan that is a file of an inventory
// block with no usable copy anywhere (the only data left) is kept with
// reason "last copy"; one whose block has a complete copy at a ready site
// is deleted like any orphan.
func TestOrphanLastCopyKept(t *testing.T) {
	ctx := context.Background()
	d := testdb.SQLite(t)
	dir := t.TempDir()
	s := site{url: "file://" + dir, data: dir}
	st := setup(t, d, s)
	plantSite(t, s)
	doc, err := inventory.DecodeInjectDoc(strings.NewReader(`{
 "sites": [{"name": "T2_B", "storage_type": "disk", "status": "ready"}, {"name": "T2_M", "storage_type": "disk", "status": "morgue"}],
 "groups": [{"name": "AnalysisOps", "olevel": "dataset"}],
 "datasets": [
  {"name": "/Lost/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "l1", "files": [{"lfn": "/store/mc/lost/l1.root", "size": 7}]}]},
  {"name": "/Spare/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "s1", "files": [{"lfn": "/store/mc/spare/s1.root", "size": 7}]}]}],
 "dataset_replicas": [{"dataset": "/Lost/R-v1/AOD", "site": "T2_M", "group": "AnalysisOps"},
  {"dataset": "/Spare/R-v1/AOD", "site": "T2_B", "group": "AnalysisOps"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Inject(ctx, now.Add(-30*day), doc); err != nil {
		t.Fatal(err)
	}
	s.plant(t, "/store/mc/lost/l1.root", 7, 30*day)
	s.plant(t, "/store/mc/spare/s1.root", 7, 30*day)
	cfg := testConfig(t)
	acts := dealerActs(t)
	c, err := consistency.New(cfg, d, st, acts, driver.Options{}, nil, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Run(ctx, "T2_A", false)
	if err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "deletions", acts.Deletions("T2_A"), []consistency.Deletion{{LFN: "/store/mc/old/orphan.root", Size: 7}, {LFN: "/store/mc/spare/s1.root", Size: 7}})
	kept := false
	for _, it := range readList[consistency.PlanItem](t, r, cfg, consistency.ListActions) {
		if it.Path == "/store/mc/lost/l1.root" {
			kept = it.Action == consistency.ActNone && it.Reason == consistency.ReasonOrphanLastCopy
		}
	}
	if !kept {
		t.Fatal("the only copy of /Lost#l1 (an orphan here, its other copy at a morgue site) was not kept with reason last copy")
	}

	// A replica flagged suspicious is listed in the next run's actions.
	snap := st.Snapshot()
	b, _ := snap.BlockByName("/P/R-v1/AOD#b2")
	a, _ := snap.SiteByName("T2_A")
	if _, err := st.Write(ctx, now, func(tx *inventory.Txn) error {
		r, _ := tx.BlockReplica(b.ID, a.ID)
		r.Suspicious = true
		return tx.Add(inventory.UpsertBlockReplica{BlockReplica: r})
	}); err != nil {
		t.Fatal(err)
	}
	r, err = c.Run(ctx, "T2_A", true)
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, it := range readList[consistency.PlanItem](t, r, cfg, consistency.ListActions) {
		listed = listed || it.Path == "/P/R-v1/AOD#b2" && it.Reason == consistency.ReasonSuspicious
	}
	if !listed {
		t.Fatal("suspicious replica not listed by consistency")
	}
}
