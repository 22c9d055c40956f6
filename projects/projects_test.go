package projects

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/estimator"
	"github.com/dynamo-go/dynamo/fileop/pfn"
	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/setest"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testutil"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/stager"
)

func testLog(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(logWriter{t})
	l.SetLevel(logrus.InfoLevel)
	return l.WithField("component", "projects")
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// env is a running SE, stager, estimator and manager on one database.
type env struct {
	stop func()
	se   *setest.SE
	d    *db.DB
	st   *stager.Stager
	m    *Manager
	srv  *httptest.Server
	api  string
}

type recordUnreg struct {
	mu  sync.Mutex
	got []string
}

func (r *recordUnreg) Unregister(_ context.Context, site, lfn string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, site+":"+lfn)
	return nil
}

func siteMapping(base string) pfn.Config {
	return pfn.Config{"srm": {
		{{LFN: "^/store/tape/(.*)", PFN: base + "/tape/$1"}},
		{{LFN: "^/store/(.*)", PFN: base + "/disk/$1"}},
	}}
}

func newEnv(t *testing.T, se *setest.SE, d *db.DB, files FileSource, mutate func(*Config), unreg Unregisterer) *env {
	t.Helper()
	cfg := Config{LookAhead: 3, RetryAfter: time.Second, ConsumerTimeout: time.Hour, Tick: 20 * time.Millisecond,
		Sites: map[string]*SiteConfig{"T1_SE": {Kind: Permanent, Mapping: siteMapping(se.Base), Protocols: []string{"https"}}},
		Stager: stager.Config{BackoffStart: 20 * time.Millisecond, BackoffCap: 100 * time.Millisecond, Tick: 20 * time.Millisecond,
			PinLifetime: time.Minute, CallTimeout: 10 * time.Second},
		Estimator: estimator.Config{Timeout: 10 * time.Second}}
	if mutate != nil {
		mutate(&cfg)
	}
	log := testLog(t)
	pool := stager.NewClientPool(se.ClientOptions(t))
	st, err := stager.New(cfg.Stager, d, log.WithField("component", "stager"), stager.Options{Resolver: pool.Resolve})
	if err != nil {
		t.Fatal(err)
	}
	est, err := estimator.New(cfg.Estimator, estimator.SRMSource{Resolve: func(s string) (estimator.Statter, error) { return pool.Resolve(s) }},
		log.WithField("component", "estimator"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, d, log, Options{Stager: st, Resolver: pool.Resolve, Prioritizer: est, Files: files, Unregister: unreg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = st.Run(ctx) }()
	go func() { defer wg.Done(); _ = m.Run(ctx) }()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(apierr.Middleware(nil, 0))
	Routes(r.Group("/api/v1/projects"), m)
	srv := httptest.NewServer(r)
	var once sync.Once
	stop := func() { once.Do(func() { srv.Close(); cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return &env{stop: stop, se: se, d: d, st: st, m: m, srv: srv, api: srv.URL + "/api/v1/projects"}
}

func (e *env) post(t *testing.T, path string, body any, accept string) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(http.MethodPost, e.api+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// injectDataset puts a dataset with online and nearline files in the
// inventory and at the SE; the snapshot order interleaves them so that a
// station without priorities would hand out a tape file first.
func injectDataset(t *testing.T, se *setest.SE, d *db.DB, nOn, nTape int) (*inventory.Store, []string, []string) {
	t.Helper()
	ctx := context.Background()
	se.Mkdir(t, "/disk/ds")
	se.Mkdir(t, "/tape/ds")
	var on, tape []string
	var files []inventory.InjectFile
	for i := 0; i < max(nOn, nTape); i++ {
		if i < nTape {
			l := fmt.Sprintf("/store/tape/ds/%d-n.root", i)
			se.Put(t, "/tape/ds/"+filepath.Base(l), []byte("tape "+l), true)
			tape = append(tape, l)
			files = append(files, inventory.InjectFile{LFN: l, Size: int64(len("tape " + l))})
		}
		if i < nOn {
			l := fmt.Sprintf("/store/ds/%d-o.root", i)
			se.Put(t, "/disk/ds/"+filepath.Base(l), []byte("disk "+l), false)
			on = append(on, l)
			files = append(files, inventory.InjectFile{LFN: l, Size: int64(len("disk " + l))})
		}
	}
	store, err := inventory.Load(ctx, d, testLog(t), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	doc := &inventory.InjectDoc{
		Sites: []inventory.InjectSite{{Name: "T1_SE", Backend: se.Base}},
		Datasets: []inventory.InjectDataset{{Name: "/P/R-v1/AOD", Blocks: []inventory.InjectBlock{
			{Name: "b1", Files: files[:len(files)/2]}, {Name: "b2", Files: files[len(files)/2:]}}}},
	}
	b, _ := json.Marshal(doc)
	doc, err = inventory.DecodeInjectDoc(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Inject(ctx, time.Now(), doc); err != nil {
		t.Fatal(err)
	}
	return store, on, tape
}

// TestProjectDelivery: a dataset from the inventory delivered over HTTP to
// three concurrent consumers and one that dies after its first file. Every
// file is delivered exactly once, cached files first; the dead consumer's
// file is in the recovery list; no pin is left at the SE.
func TestProjectDelivery(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		// The recall (1.5 s) is much longer than an online get (tens of
		// ms), so that "cached first" holds even on a loaded machine; the
		// consumer timeout (2 s) is far above a live consumer's period.
		se := setest.Start(t, setest.Options{RecallDelay: 1500 * time.Millisecond})
		store, on, tape := injectDataset(t, se, d, 4, 4)
		e := newEnv(t, se, d, InventoryFiles{Store: store}, func(c *Config) { c.ConsumerTimeout = 2 * time.Second }, nil)

		code, _, b := e.post(t, "", StartRequest{Name: "p1", Dataset: "/P/R-v1/AOD", Site: "T1_SE"}, "")
		if code != http.StatusCreated {
			t.Fatalf("start: %d %s", code, b)
		}
		if code, _, b := e.post(t, "", StartRequest{Name: "p1", Dataset: "/P/R-v1/AOD", Site: "T1_SE"}, ""); code != http.StatusConflict {
			t.Errorf("second start with the same name: %d %s", code, b)
		}
		establish := func(name string) int64 {
			code, _, b := e.post(t, "/p1/processes", map[string]string{"name": name}, "")
			var r struct{ Data struct{ CPID int64 } }
			if code != http.StatusCreated || json.Unmarshal(b, &r) != nil || r.Data.CPID == 0 {
				t.Fatalf("establish: %d %s", code, b)
			}
			return r.Data.CPID
		}
		var mu sync.Mutex
		var order []string // delivery order over all consumers
		count := map[string]int{}
		hc := se.HTTPClient(t)
		next := func(cpid int64) (string, int) {
			code, hdr, b := e.post(t, fmt.Sprintf("/p1/processes/%d/next", cpid), nil, "")
			switch code {
			case http.StatusOK:
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				if len(lines) != 2 || !strings.HasPrefix(lines[0], "https://") {
					t.Errorf("200 body %q", b)
					return "", code
				}
				// The URL is a working TURL with the file's content.
				resp, err := hc.Get(lines[0])
				if err != nil {
					t.Error(err)
					return lines[1], code
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.HasSuffix(string(got), lines[1]) {
					t.Errorf("content of %s = %q", lines[1], got)
				}
				mu.Lock()
				order = append(order, lines[1])
				count[lines[1]]++
				mu.Unlock()
				return lines[1], code
			case http.StatusAccepted:
				if hdr.Get("Retry-After") != "1" || !strings.Contains(string(b), ":1") {
					t.Errorf("202 without Retry-After: %v %q", hdr, b)
				}
			case http.StatusNoContent:
			default:
				t.Errorf("next: %d %s", code, b)
			}
			return "", code
		}
		// The consumer that dies: takes one file, never reports, stops
		// calling; the manager declares it dead after ConsumerTimeout.
		dying := establish("dying")
		var lostLFN string
		for lostLFN == "" {
			l, code := next(dying)
			if code == http.StatusNoContent {
				t.Fatal("no file for the dying consumer")
			}
			lostLFN = l
			time.Sleep(10 * time.Millisecond)
		}
		var wg sync.WaitGroup
		for i := range 3 {
			cpid := establish(fmt.Sprintf("job%d", i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < 2000; n++ {
					l, code := next(cpid)
					switch code {
					case http.StatusOK:
						if c, _, b := e.post(t, fmt.Sprintf("/p1/processes/%d/files", cpid), map[string]string{"filename": l, "status": "consumed"}, ""); c != http.StatusOK {
							t.Errorf("consumed %s: %d %s", l, c, b)
						}
					case http.StatusAccepted:
						time.Sleep(20 * time.Millisecond)
					default:
						if c, _, b := e.post(t, fmt.Sprintf("/p1/processes/%d/end", cpid), map[string]string{"status": "completed"}, ""); c != http.StatusOK {
							t.Errorf("end process: %d %s", c, b)
						}
						return
					}
				}
				t.Error("consumer never got 204")
				dumpState(t, e)
			}()
		}
		wg.Wait()
		all := append(slices.Clone(on), tape...)
		for _, l := range all {
			if count[l] != 1 {
				t.Errorf("%s delivered %d times", l, count[l])
			}
		}
		if len(order) != len(all) {
			t.Errorf("%d deliveries for %d files", len(order), len(all))
		}
		for i, l := range order[:len(on)] {
			if !slices.Contains(on, l) {
				t.Errorf("delivery %d is %s, a tape file, before all cached files: %v", i, l, order)
			}
		}
		// A report for a file of another consumer is refused.
		if c, _, _ := e.post(t, "/p1/processes/2/files", map[string]string{"filename": lostLFN, "status": "consumed"}, ""); c != http.StatusConflict {
			t.Errorf("reporting a file delivered to another process: %d", c)
		}
		code, _, b = e.post(t, "/p1/end", nil, "")
		var env struct{ Data Summary }
		if code != http.StatusOK || json.Unmarshal(b, &env) != nil {
			t.Fatalf("end: %d %s", code, b)
		}
		s := env.Data
		if s.Counts[FileConsumed] != len(all)-1 || s.Counts[FileLost] != 1 || !slices.Equal(s.Recovery, []string{lostLFN}) {
			t.Errorf("summary: %+v", s)
		}
		if s.Consumers[0].State != ConsumerDead || s.Consumers[0].Delivered != 1 {
			t.Errorf("dying consumer: %+v", s.Consumers[0])
		}
		if code, _, _ := e.post(t, fmt.Sprintf("/p1/processes/%d/next", 2), nil, ""); code != http.StatusNoContent {
			t.Errorf("next after end: %d", code)
		}
		se.NoLeaks(t)
	})
}

// TestEndReleasesAndRecovery: ending a project with files staged, ready
// and delivered releases every pin and lists every unconsumed file; the
// HTTP errors name what is wrong.
func TestEndReleasesAndRecovery(t *testing.T) {
	se := setest.Start(t, setest.Options{RecallDelay: 2 * time.Second})
	d := testdb.SQLite(t)
	_, on, tape := injectDataset(t, se, d, 2, 2)
	e := newEnv(t, se, d, nil, nil, nil)
	ctx := context.Background()
	files := append(slices.Clone(on), tape...)
	if _, err := e.m.Start(ctx, StartRequest{Name: "p2", Files: files, Site: "T1_SE", LookAhead: 4}); err != nil {
		t.Fatal(err)
	}
	cpid, err := e.m.EstablishProcess(ctx, "p2", "job")
	if err != nil {
		t.Fatal(err)
	}
	var got Delivery
	for got.Status != Delivered {
		if got, err = e.m.NextFile(ctx, "p2", cpid); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.m.UpdateFileStatus(ctx, "p2", cpid, got.LFN, "consumed"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.UpdateFileStatus(ctx, "p2", cpid, got.LFN, "consumed"); err == nil {
		t.Error("second report accepted")
	}
	if _, err := e.m.NextFile(ctx, "p2", cpid); err != nil { // the other cached file, delivered, never reported
		t.Fatal(err)
	}
	// The tape files are still being recalled.
	s, err := e.m.End(ctx, "p2")
	if err != nil {
		t.Fatal(err)
	}
	if s.Counts[FileConsumed] != 1 || len(s.Recovery) != 3 || slices.Contains(s.Recovery, got.LFN) {
		t.Errorf("summary after end: %+v", s)
	}
	// samweb clients send forms.
	resp, err := http.PostForm(e.api, url.Values{"name": {"p4"}, "site": {"T1_SE"}, "files": {on[0], on[1]}})
	if err != nil {
		t.Fatal(err)
	}
	fb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(fb), `"files":2`) {
		t.Errorf("start with a form: %d %s", resp.StatusCode, fb)
	}
	resp, err = http.PostForm(e.api+"/p4/processes", url.Values{"name": {"formjob"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("establish with a form: %d", resp.StatusCode)
	}
	if _, err := e.m.End(ctx, "p4"); err != nil {
		t.Fatal(err)
	}
	se.NoLeaks(t) // once the tape recalls finished: they must not pin for an ended project
	for _, tc := range []struct {
		path string
		body any
		want int
	}{
		{"", StartRequest{Name: "bad name", Files: files, Site: "T1_SE"}, http.StatusBadRequest},
		{"", StartRequest{Name: "p3", Files: files, Site: "NOWHERE"}, http.StatusNotFound},
		{"", StartRequest{Name: "p3", Site: "T1_SE"}, http.StatusBadRequest},
		{"/nope/processes", map[string]string{"name": "x"}, http.StatusNotFound},
		{"/p2/processes", map[string]string{"name": "x"}, http.StatusConflict},
		{"/p2/processes/abc/next", nil, http.StatusBadRequest},
		{"/p2/processes/1/files", map[string]string{"filename": got.LFN, "status": "eaten"}, http.StatusBadRequest},
	} {
		if code, _, b := e.post(t, tc.path, tc.body, ""); code != tc.want || !strings.Contains(string(b), "error") {
			t.Errorf("POST %s %+v: %d %s, want %d", tc.path, tc.body, code, b, tc.want)
		}
	}
}

// TestVolatileVanished: on volatile storage a ready file that disappeared
// is found at dispatch, unregistered and skipped.
func TestVolatileVanished(t *testing.T) {
	se := setest.Start(t, setest.Options{})
	d := testdb.SQLite(t)
	_, on, _ := injectDataset(t, se, d, 2, 0)
	unreg := &recordUnreg{}
	e := newEnv(t, se, d, nil, func(c *Config) { c.Sites["T1_SE"].Kind = Volatile }, unreg)
	ctx := context.Background()
	if _, err := e.m.Start(ctx, StartRequest{Name: "v", Files: on, Site: "T1_SE"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, "both files ready", func() bool {
		s, _ := e.m.Summary(ctx, "v")
		return s.Counts[FileReady] == 2
	})
	// The storage drops the first file by itself.
	if err := os.Remove(filepath.Join(se.Root, "disk/ds", filepath.Base(on[0]))); err != nil {
		t.Fatal(err)
	}
	cpid, _ := e.m.EstablishProcess(ctx, "v", "job")
	d1, err := e.m.NextFile(ctx, "v", cpid)
	if err != nil || d1.Status != Delivered || d1.LFN != on[1] {
		t.Fatalf("NextFile = %+v, %v; want %s", d1, err, on[1])
	}
	if !slices.Equal(unreg.got, []string{"T1_SE:" + on[0]}) {
		t.Errorf("unregistered %v", unreg.got)
	}
	s, _ := e.m.Summary(ctx, "v")
	if s.Counts[FileVanished] != 1 {
		t.Errorf("summary %+v", s)
	}
	if _, err := e.m.End(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	se.NoLeaks(t)
}

// TestManagerRestart: the station process dies with a file delivered, one
// ready and others pending; the next process resumes the project from the
// database: the consumer reports its file, gets each remaining file once,
// and no pin leaks.
func TestManagerRestart(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		se := setest.Start(t, setest.Options{})
		_, on, _ := injectDataset(t, se, d, 4, 0)
		e1 := newEnv(t, se, d, nil, func(c *Config) { c.LookAhead = 2 }, nil)
		ctx := context.Background()
		if _, err := e1.m.Start(ctx, StartRequest{Name: "r", Files: on, Site: "T1_SE"}); err != nil {
			t.Fatal(err)
		}
		cpid, err := e1.m.EstablishProcess(ctx, "r", "job")
		if err != nil {
			t.Fatal(err)
		}
		first := waitDelivery(t, e1.m, "r", cpid)
		testutil.Eventually(t, time.Minute, "the look-ahead refilled", func() bool {
			s, _ := e1.m.Summary(ctx, "r")
			return s.Counts[FileReady] == 2
		})
		e1.stop()

		e2 := newEnv(t, se, d, nil, func(c *Config) { c.LookAhead = 2 }, nil)
		testutil.Eventually(t, time.Minute, "the project resumed", func() bool {
			s, err := e2.m.Summary(ctx, "r")
			return err == nil && s.Counts[FileDelivered] == 1
		})
		if err := e2.m.UpdateFileStatus(ctx, "r", cpid, first.LFN, StatusConsumed); err != nil {
			t.Fatalf("report after restart: %v", err)
		}
		got := map[string]int{first.LFN: 1}
		for {
			dl := waitDelivery(t, e2.m, "r", cpid)
			if dl.Status == NoMore {
				break
			}
			got[dl.LFN]++
			if err := e2.m.UpdateFileStatus(ctx, "r", cpid, dl.LFN, StatusConsumed); err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range on {
			if got[l] != 1 {
				t.Errorf("%s delivered %d times", l, got[l])
			}
		}
		s, err := e2.m.End(ctx, "r")
		if err != nil || len(s.Recovery) != 0 || s.Counts[FileConsumed] != len(on) {
			t.Errorf("end: %+v %v", s, err)
		}
		se.NoLeaks(t)
	})
}

// waitDelivery asks until a file is delivered or none is left.
func waitDelivery(t *testing.T, m *Manager, project string, cpid int64) Delivery {
	t.Helper()
	var dl Delivery
	testutil.Eventually(t, time.Minute, "a delivery", func() bool {
		var err error
		if dl, err = m.NextFile(context.Background(), project, cpid); err != nil {
			t.Fatal(err)
		}
		return dl.Status != Wait
	})
	return dl
}

// dumpState logs the stager's and the project's rows (diagnosis of a
// failed delivery test).
func dumpState(t *testing.T, e *env) {
	var rows []struct {
		ID    int64  `db:"id"`
		State string `db:"state"`
		SURL  string `db:"surl"`
		Token string `db:"token"`
		Polls int    `db:"polls"`
		Err   string `db:"error"`
		Next  int64  `db:"next_poll"`
	}
	_ = e.d.Select(&rows, "SELECT id, state, surl, token, polls, error, next_poll FROM stager_requests ORDER BY id")
	for _, r := range rows {
		t.Logf("stager %d %s %s tok=%s polls=%d next=%v err=%s", r.ID, r.State, r.SURL, r.Token, r.Polls, time.Until(time.Unix(0, r.Next)), r.Err)
	}
	var files []struct {
		LFN   string `db:"lfn"`
		State string `db:"state"`
		Req   int64  `db:"request_id"`
		Rated bool   `db:"rated"`
	}
	_ = e.d.Select(&files, "SELECT lfn, state, request_id, rated FROM project_files ORDER BY idx")
	for _, f := range files {
		t.Logf("file %s %s req=%d rated=%v", f.LFN, f.State, f.Req, f.Rated)
	}
	t.Logf("stager active %d", e.st.Active())
}

// A server stopped while the manager is still loading its projects is
// shutting down, not failing: Run reports no error, so serve does not log
// a clean shutdown as a component failure.
func TestRunCancelledWhileLoadingIsNoFailure(t *testing.T) {
	d := testdb.SQLite(t)
	se := setest.Start(t, setest.Options{})
	e := newEnv(t, se, d, nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.m.Run(ctx); err != nil {
		t.Fatalf("Run on a cancelled context: %v", err)
	}
}
