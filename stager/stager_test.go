package stager

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/setest"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testutil"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

func TestNextDelay(t *testing.T) {
	const start, cap = 100 * time.Millisecond, time.Second
	cases := []struct {
		prev, server, want time.Duration
	}{
		{0, 0, start},
		{start, 0, 2 * start},
		{800 * time.Millisecond, 0, cap}, // doubling stops at the cap
		{cap, 0, cap},                    //
		{start, 700 * time.Millisecond, 700 * time.Millisecond}, // the server's estimate defers the poll
		{start, time.Hour, cap},                                 // but no further than the cap
		{start, 50 * time.Millisecond, 2 * start},               // and never hastens it
	}
	for _, c := range cases {
		if got := nextDelay(c.prev, c.server, start, cap); got != c.want {
			t.Errorf("nextDelay(%v, %v) = %v, want %v", c.prev, c.server, got, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":  {"backof_start: 1s\n", "1:1: backof_start: unknown key"},
		"cap below":    {"backoff_start: 10s\nbackoff_cap: 1s\n", "backoff_cap"},
		"short pin":    {"pin_lifetime: 100ms\n", "pin_lifetime"},
		"neg retries":  {"webhook: {retries: -1}\n", "webhook.retries"},
		"empty proto":  {"protocols: [https, '']\n", "protocols[1]"},
		"bad duration": {"tick: soon\n", `1:7: tick: "soon" is not a duration`},
		"short deleg":  {"delegation: {max_lifetime: 1s}\n", "delegation.max_lifetime"},
	} {
		_, err := yamlconf.Read(strings.NewReader(tc.yaml), DecodeConfig)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: err = %v, want one naming %q", name, err, tc.want)
		}
	}
	c, err := yamlconf.Read(strings.NewReader(""), DecodeConfig)
	if err != nil || c.BackoffStart != 2*time.Second || c.BackoffCap != 5*time.Minute {
		t.Errorf("defaults: %+v %v", c, err)
	}
}

func testLog(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(logWriter{t})
	l.SetLevel(logrus.DebugLevel)
	return l.WithField("component", "stager")
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func fastConfig() Config {
	return Config{BackoffStart: 20 * time.Millisecond, BackoffCap: 200 * time.Millisecond, Tick: 20 * time.Millisecond,
		PinLifetime: time.Minute, CallTimeout: 10 * time.Second, Protocols: []string{"https"}}
}

func newStager(t *testing.T, d *db.DB, se *setest.SE, cfg Config) *Stager {
	t.Helper()
	s, err := New(cfg, d, testLog(t), Options{Resolver: NewClientPool(se.ClientOptions(t)).Resolve,
		Mover: HTTPMover{Client: se.HTTPClient(t)}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run starts s.Run; the returned stop cancels it and waits.
func run(t *testing.T, s *Stager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, timeout, what, cond)
}

// results collects callbacks.
type results struct {
	mu  sync.Mutex
	all []Result
}

func (r *results) add(res Result) { r.mu.Lock(); r.all = append(r.all, res); r.mu.Unlock() }

func (r *results) last(id int64) (Result, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.all) - 1; i >= 0; i-- {
		if r.all[i].ID == id {
			return r.all[i], true
		}
	}
	return Result{}, false
}

func (r *results) wait(t *testing.T, id int64, st State, timeout time.Duration) Result {
	t.Helper()
	var got Result
	waitFor(t, "request "+string(st), timeout, func() bool {
		var ok bool
		got, ok = r.last(id)
		return ok && got.State == st
	})
	return got
}

func lookup(t *testing.T, s *Stager, id int64) Result {
	t.Helper()
	r, err := s.Lookup(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGet: queued gets of an online and a nearline file become TURLs, the
// nearline one after several polls; release gives the pins back at the SE.
func TestGet(t *testing.T) {
	se := setest.Start(t, setest.Options{RecallDelay: 500 * time.Millisecond})
	online := se.Put(t, "/disk-f1", []byte("online"), false)
	nearline := se.Put(t, "/tape/t1", []byte("tape"), true)
	s := newStager(t, testdb.SQLite(t), se, fastConfig())
	run(t, s)
	var rs results
	ctx := context.Background()
	id1, err := s.Submit(ctx, Request{Kind: KindGet, SURL: online}, rs.add)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := s.Submit(ctx, Request{Kind: KindGet, SURL: nearline}, rs.add)
	if err != nil {
		t.Fatal(err)
	}
	r1 := rs.wait(t, id1, StateReady, 10*time.Second)
	r2 := rs.wait(t, id2, StateReady, 10*time.Second)
	for _, r := range []Result{r1, r2} {
		if !strings.HasPrefix(r.TURL, "https://localhost:") || r.Token == "" {
			t.Errorf("ready result %+v", r)
		}
	}
	if p, _ := se.Pinned(t); p != 2 {
		t.Errorf("SE pins after two ready gets = %d, want 2", p)
	}
	// The recall takes 500 ms: the stager must have polled more than once.
	var polls int
	if err := s.d.GetContext(ctx, &polls, "SELECT polls FROM stager_requests WHERE id = ?", id2); err != nil || polls < 2 {
		t.Errorf("nearline get polled %d times (err %v), want several", polls, err)
	}
	// The TURL works.
	resp, err := se.HTTPClient(t).Get(r2.TURL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "tape" {
		t.Errorf("GET TURL = %q", b)
	}
	for _, id := range []int64{id1, id2} {
		if err := s.Release(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	se.NoLeaks(t)
	waitFor(t, "released state", 5*time.Second, func() bool { return lookup(t, s, id1).State == StateReleased })
	if got := se.FileStatuses(t, r1.Token); len(got) != 1 || got[0] != "SRM_RELEASED" {
		t.Errorf("SE status after release = %v", got)
	}
	waitFor(t, "the stager to forget finished requests", 5*time.Second, func() bool { return s.Active() == 0 })
	// Past the retention, finished rows are deleted; recent ones stay.
	if n, err := s.gc(ctx, time.Now()); err != nil || n != 0 {
		t.Errorf("gc of recent requests: %d %v", n, err)
	}
	if n, err := s.gc(ctx, time.Now().Add(8*24*time.Hour)); err != nil || n != 2 {
		t.Errorf("gc past retention: %d %v", n, err)
	}
	if _, err := s.Lookup(ctx, id1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup after gc: %v", err)
	}

	// A missing file fails, and nothing is left at the SE.
	id3, _ := s.Submit(ctx, Request{Kind: KindGet, SURL: se.Base + "/nope"}, rs.add)
	if r := rs.wait(t, id3, StateFailed, 10*time.Second); !strings.Contains(r.Error, "SRM_INVALID_PATH") {
		t.Errorf("missing file: %+v", r)
	}
	se.NoLeaks(t)
}

// TestAbortTimeoutExpiry: an aborted and a timed-out get are aborted at
// the SE (the recall finishing later pins nothing), a ready get nobody
// releases expires and is released by the stager.
func TestAbortTimeoutExpiry(t *testing.T) {
	se := setest.Start(t, setest.Options{RecallDelay: 2 * time.Second})
	a := se.Put(t, "/tape/a", []byte("a"), true)
	b := se.Put(t, "/tape/b", []byte("b"), true)
	c := se.Put(t, "/disk-c", []byte("c"), false)
	cfg := fastConfig()
	cfg.PinLifetime = time.Second
	s := newStager(t, testdb.SQLite(t), se, cfg)
	run(t, s)
	var rs results
	ctx := context.Background()
	idA, _ := s.Submit(ctx, Request{Kind: KindGet, SURL: a}, rs.add)
	idB, _ := s.Submit(ctx, Request{Kind: KindGet, SURL: b, Timeout: time.Second}, rs.add)
	idC, _ := s.Submit(ctx, Request{Kind: KindGet, SURL: c}, rs.add)
	waitFor(t, "the get of a to be polling", 5*time.Second, func() bool { return lookup(t, s, idA).State == StatePolling })
	if err := s.Abort(ctx, idA); err != nil {
		t.Fatal(err)
	}
	ra := rs.wait(t, idA, StateAborted, 5*time.Second)
	rb := rs.wait(t, idB, StateTimedOut, 5*time.Second)
	rs.wait(t, idC, StateReady, 5*time.Second)
	rc := rs.wait(t, idC, StateExpired, 5*time.Second)
	for _, r := range []Result{ra, rb} {
		waitFor(t, "SE abort of "+r.SURL, 5*time.Second, func() bool {
			st := se.FileStatuses(t, r.Token)
			return len(st) == 1 && st[0] == "SRM_ABORTED"
		})
	}
	if !strings.Contains(rc.Error, "pin lifetime") {
		t.Errorf("expired: %+v", rc)
	}
	se.NoLeaks(t)
	// The recalls have finished by now: they must have left the aborted
	// gets aborted rather than pinned them (a pin would expire by itself,
	// so the statuses, not the pin count, show it).
	for _, r := range []Result{ra, rb} {
		if st := se.FileStatuses(t, r.Token); len(st) != 1 || st[0] != "SRM_ABORTED" {
			t.Errorf("get of %s after its recall finished: %v, want SRM_ABORTED", r.SURL, st)
		}
	}
	if got := se.FileStatuses(t, rc.Token); got[0] != "SRM_RELEASED" {
		t.Errorf("expired pin at the SE: %v", got)
	}
}

// TestRestart: a process dies with a get polling and a get pinned; the
// next process resumes the poll, notifies the owner, and the releases
// reach the SE. Nothing leaks. On SQLite and MariaDB.
func TestRestart(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		se := setest.Start(t, setest.Options{RecallDelay: 800 * time.Millisecond})
		slow := se.Put(t, "/tape/slow", []byte("slow"), true)
		fast := se.Put(t, "/disk-fast", []byte("fast"), false)
		ctx := context.Background()

		s1 := newStager(t, d, se, fastConfig())
		var rs1 results
		s1.Subscribe("proj", rs1.add)
		stop1 := run(t, s1)
		idSlow, _ := s1.Submit(ctx, Request{Kind: KindGet, SURL: slow, Owner: "proj"}, nil)
		idFast, _ := s1.Submit(ctx, Request{Kind: KindGet, SURL: fast, Owner: "proj"}, nil)
		rs1.wait(t, idFast, StateReady, 5*time.Second)
		waitFor(t, "slow get polling", 5*time.Second, func() bool { return lookup(t, s1, idSlow).State == StatePolling })
		stop1()
		if _, ok := rs1.last(idSlow); ok {
			t.Fatal("slow get completed before the restart; lengthen the recall")
		}

		s2 := newStager(t, d, se, fastConfig())
		var rs2 results
		s2.Subscribe("proj", rs2.add)
		run(t, s2)
		r := rs2.wait(t, idSlow, StateReady, 10*time.Second)
		if r.TURL == "" {
			t.Errorf("resumed get: %+v", r)
		}
		if p, _ := se.Pinned(t); p != 2 {
			t.Errorf("pins after resume = %d, want 2", p)
		}
		for _, id := range []int64{idSlow, idFast} {
			if err := s2.Release(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		se.NoLeaks(t)
		waitFor(t, "idle stager", 5*time.Second, func() bool { return s2.Active() == 0 })
	})
}

// TestReleaseSurvivesCrash: Release persists the intent, so a pin released
// just before the process dies is given back by the next process.
func TestReleaseSurvivesCrash(t *testing.T) {
	se := setest.Start(t, setest.Options{})
	f := se.Put(t, "/disk-x", []byte("x"), false)
	d := testdb.SQLite(t)
	ctx := context.Background()
	s1 := newStager(t, d, se, fastConfig())
	var rs results
	stop1 := run(t, s1)
	id, _ := s1.Submit(ctx, Request{Kind: KindGet, SURL: f}, rs.add)
	rs.wait(t, id, StateReady, 5*time.Second)
	stop1()
	// Release on a stopped stager: only the database records it.
	if err := s1.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	if p, _ := se.Pinned(t); p != 1 {
		t.Fatalf("pins = %d, want 1 before the restart", p)
	}
	s2 := newStager(t, d, se, fastConfig())
	run(t, s2)
	se.NoLeaks(t)
}

// TestSyncOpsAndWebhook: mkdir, copy (get + put + HTTP move), ls, delete,
// each reported to a webhook with a valid signature.
func TestSyncOpsAndWebhook(t *testing.T) {
	se := setest.Start(t, setest.Options{})
	src := se.Put(t, "/tape/src", []byte("copy me"), true) // the copy recalls it
	var mu sync.Mutex
	hooks := map[int64][]Result{}
	cfg := fastConfig()
	cfg.Webhook.Secret = "s3cret"
	cfg.Webhook.AllowHosts = []string{"127.0.0.1"} // the test's callback server
	var fails int
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte("s3cret"))
		m.Write(body)
		if r.Header.Get("X-Dynamo-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) {
			t.Errorf("bad signature %q", r.Header.Get("X-Dynamo-Signature"))
		}
		mu.Lock()
		defer mu.Unlock()
		if fails < 1 { // the first delivery fails: it must be retried
			fails++
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var res Result
		if err := json.Unmarshal(body, &res); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		hooks[res.ID] = append(hooks[res.ID], res)
	}))
	defer hs.Close()
	s := newStager(t, testdb.SQLite(t), se, cfg)
	run(t, s)
	ctx := context.Background()
	hookFor := func(id int64) Result {
		var r Result
		waitFor(t, "webhook", 10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			if len(hooks[id]) > 0 {
				r = hooks[id][len(hooks[id])-1]
				return true
			}
			return false
		})
		return r
	}
	submit := func(r Request) int64 {
		r.Webhook = hs.URL + "/cb"
		id, err := s.Submit(ctx, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	if r := hookFor(submit(Request{Kind: KindMkdir, SURL: se.Base + "/out"})); r.State != StateDone {
		t.Fatalf("mkdir: %+v", r)
	}
	if r := hookFor(submit(Request{Kind: KindMkdir, SURL: se.Base + "/out"})); r.State != StateDone {
		t.Errorf("mkdir of an existing directory: %+v", r)
	}
	if r := hookFor(submit(Request{Kind: KindCopy, SURL: src, Dest: se.Base + "/out/dst"})); r.State != StateDone {
		t.Fatalf("copy: %+v", r)
	}
	if b, err := os.ReadFile(se.Root + "/out/dst"); err != nil || string(b) != "copy me" {
		t.Errorf("copied content %q %v", b, err)
	}
	r := hookFor(submit(Request{Kind: KindLs, SURL: se.Base + "/out"}))
	if r.State != StateDone || len(r.Entries) != 1 || r.Entries[0].Path != "/out/dst" || r.Entries[0].Size != 7 {
		t.Errorf("ls: %+v", r)
	}
	if r := hookFor(submit(Request{Kind: KindDelete, SURL: se.Base + "/out/dst"})); r.State != StateDone {
		t.Errorf("delete: %+v", r)
	}
	if _, err := os.Stat(se.Root + "/out/dst"); !os.IsNotExist(err) {
		t.Errorf("deleted file still there: %v", err)
	}
	if r := hookFor(submit(Request{Kind: KindDelete, SURL: se.Base + "/out/dst"})); r.State != StateDone {
		t.Errorf("delete of a missing file: %+v", r)
	}
	se.NoLeaks(t)
	waitFor(t, "the stager to forget delivered requests", 5*time.Second, func() bool { return s.Active() == 0 })
}

func TestSubmitValidates(t *testing.T) {
	s, err := New(fastConfig(), testdb.SQLite(t), testLog(t), Options{Resolver: Single(nil)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Request{
		{Kind: "move", SURL: "srm://h/x"},
		{Kind: KindGet, SURL: "https://h/x"},
		{Kind: KindCopy, SURL: "srm://h/x"},
		{Kind: KindGet, SURL: "srm://h/x", Dest: "srm://h/y"},
		{Kind: KindGet, SURL: "srm://h/x", Webhook: "ftp://x"},
	} {
		if _, err := s.Submit(context.Background(), r, nil); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Submit(%+v) = %v, want ErrBadRequest", r, err)
		}
	}
	if _, err := s.Submit(context.Background(), Request{Kind: KindCopy, SURL: "srm://h/x", Dest: "srm://h/y"}, nil); !errors.Is(err, ErrNoMover) {
		t.Errorf("copy without mover: %v", err)
	}
	s.cfg.Webhook.AllowHosts = []string{"cb.example.org", ".example.net"}
	for hook, ok := range map[string]bool{"https://cb.example.org/x": true, "https://a.example.net:8443/": true,
		"http://169.254.169.254/latest": false, "https://evil.org/cb.example.org": false, "https://example.net/": false} {
		_, err := s.Submit(context.Background(), Request{Kind: KindGet, SURL: "srm://h/x", Webhook: hook}, nil)
		if (err == nil) != ok {
			t.Errorf("webhook %s: err %v, want allowed=%v", hook, err, ok)
		}
	}
}

// TestRoutes: an external caller submits over HTTP with a webhook, gets
// called back with the TURL, and releases over HTTP.
func TestRoutes(t *testing.T) {
	se := setest.Start(t, setest.Options{})
	f := se.Put(t, "/r1", []byte("r"), false)
	cfg := fastConfig()
	cfg.Webhook.AllowHosts = []string{"127.0.0.1"} // the test's callback server
	s := newStager(t, testdb.SQLite(t), se, cfg)
	run(t, s)
	got := make(chan Result, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res Result
		_ = json.NewDecoder(r.Body).Decode(&res)
		got <- res
	}))
	defer hook.Close()
	gin.SetMode(gin.TestMode)
	g := gin.New()
	g.Use(apierr.Middleware(nil, 0))
	Routes(g.Group("/api/v1/stager"), s)
	api := httptest.NewServer(g)
	defer api.Close()
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, api.URL+"/api/v1/stager"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := do("POST", "/requests", `{"kind":"get","surl":"`+f+`","webhook":"`+hook.URL+`"}`)
	if code != http.StatusAccepted || !strings.Contains(body, `"data":{"id":1}`) {
		t.Fatalf("submit: %d %s", code, body)
	}
	select {
	case r := <-got:
		if r.State != StateReady || r.TURL == "" {
			t.Errorf("webhook: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook call")
	}
	if code, body := do("GET", "/requests/1", ""); code != http.StatusOK || !strings.Contains(body, `"state":"ready"`) {
		t.Errorf("lookup: %d %s", code, body)
	}
	if code, _ := do("POST", "/requests/1/release", ""); code != http.StatusOK {
		t.Errorf("release: %d", code)
	}
	se.NoLeaks(t)
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/requests", `{"kind":"get","surl":"http://x"}`, http.StatusBadRequest},
		{"POST", "/requests", `{"kind":"get",`, http.StatusBadRequest},
		{"GET", "/requests/99", "", http.StatusNotFound},
		{"GET", "/requests/x", "", http.StatusBadRequest},
	} {
		if code, body := do(tc.method, tc.path, tc.body); code != tc.want || !strings.Contains(body, "error") {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.want)
		}
	}
}

// TestHonoursEstimatedWait: the SE answers a queued get with an
// estimatedWaitTime of about a second; with a 20 ms backoff start the
// stager must still wait for it instead of polling ~6 times in a second.
func TestHonoursEstimatedWait(t *testing.T) {
	se := setest.Start(t, setest.Options{RecallDelay: 800 * time.Millisecond})
	f := se.Put(t, "/tape/w", []byte("w"), true)
	cfg := fastConfig()
	cfg.BackoffCap = 5 * time.Second
	s := newStager(t, testdb.SQLite(t), se, cfg)
	run(t, s)
	var rs results
	id, _ := s.Submit(context.Background(), Request{Kind: KindGet, SURL: f}, rs.add)
	rs.wait(t, id, StateReady, 10*time.Second)
	var polls int
	if err := s.d.GetContext(context.Background(), &polls, "SELECT polls FROM stager_requests WHERE id = ?", id); err != nil {
		t.Fatal(err)
	}
	if polls > 3 {
		t.Errorf("%d status polls for an 800 ms recall: the server's estimated wait was not honoured", polls)
	}
	_ = s.Release(context.Background(), id)
	se.NoLeaks(t)
}
