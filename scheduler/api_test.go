package scheduler

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

type apiClient struct {
	t   *testing.T
	srv *httptest.Server
}

// do sends a request and decodes {"status", "data"|"error"} into out.
func (c apiClient) do(method, path, body string, wantCode int, out any) map[string]json.RawMessage {
	c.t.Helper()
	var rd *bytes.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, c.srv.URL+"/api/v1/apps"+path, rd)
	must(c.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	must(c.t, err)
	defer resp.Body.Close()
	var env map[string]json.RawMessage
	must(c.t, json.NewDecoder(resp.Body).Decode(&env))
	if resp.StatusCode != wantCode {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, wantCode, env["error"])
	}
	if out != nil {
		must(c.t, json.Unmarshal(env["data"], out))
	}
	return env
}

func TestRoutes(t *testing.T) {
	gin.SetMode(gin.TestMode)
	d := testdb.SQLite(t)
	cfg := fastConfig("api")
	cfg.Cron = []CronEntry{{Name: "nightly", Schedule: "0 3 * * *", App: AppNoop}}
	s := newScheduler(t, d, cfg, nil)
	start(t, s)
	waitLeader(t, s)
	eng := gin.New()
	eng.Use(apierr.Middleware(nil, 0))
	grp := eng.Group("/api/v1/apps", func(c *gin.Context) { c.Set(UserKey, "operator") }) // stands in for the registry's auth
	s.Routes(grp)
	srv := httptest.NewServer(eng)
	defer srv.Close()
	c := apiClient{t, srv}

	var list ListResponse
	c.do("GET", "", "", 200, &list)
	if !list.Leader || list.Server != "api" || list.Lease.Holder != "api" || len(list.Apps) != 3 {
		t.Fatalf("list: %+v", list)
	}
	if a := list.Apps[0]; a.Name != AppNoop || len(a.Schedules) != 1 || a.Schedules[0].Spec != "0 3 * * *" {
		t.Fatalf("noop: %+v", a)
	}

	// Run now, waiting: 200 with the ended run.
	var r Run
	c.do("POST", "/noop/run", `{"args":["--sleep","10ms"],"wait":true}`, 200, &r)
	if r.Status != StatusOK || r.Trigger != TriggerManual || r.TriggerName != "operator" || r.Args[1] != "10ms" {
		t.Fatalf("run: %+v", r)
	}
	// Without wait: 202 with the queued run.
	c.do("POST", "/test:counter/run", "", 202, &r)
	if r.Status != StatusQueued || r.ID == 0 {
		t.Fatalf("queued run: %+v", r)
	}
	waitFor(t, "the counter run", 5*time.Second, func() bool { return counterValue(s) == 1 })
	c.do("GET", "/runs/"+itoa(r.ID), "", 200, &r)
	if r.Status != StatusOK || r.Updates != 1 {
		t.Fatalf("run %d: %+v", r.ID, r)
	}
	// A failing run is recorded as failed.
	c.do("POST", "/noop/run", `{"args":["--fail"],"wait":true}`, 200, &r)
	if r.Status != StatusFailed || !strings.Contains(r.Error, "failing as asked") {
		t.Fatalf("failing run: %+v", r)
	}

	// Pause: the lock shows in the listing; run-now is refused with 409
	// and the skip is recorded.
	var l Lock
	c.do("POST", "/noop/pause", `{"reason":"disk full"}`, 200, &l)
	if l.By != "operator" || l.Reason != "disk full" {
		t.Fatalf("pause: %+v", l)
	}
	var ai AppInfo
	c.do("GET", "/noop", "", 200, &ai)
	if ai.Paused == nil || ai.Paused.Reason != "disk full" || ai.LastRun == nil || ai.LastRun.Status != StatusFailed {
		t.Fatalf("app: %+v", ai)
	}
	env := c.do("POST", "/noop/run", "", 409, nil)
	if string(env["errorType"]) != `"conflict"` || string(env["code"]) != `"paused"` || !strings.Contains(string(env["error"]), "skipped run") {
		t.Fatalf("run of paused app: %s %s", env["code"], env["error"])
	}
	rr := c.runs("/noop/runs?status=skipped")
	if len(rr.Runs) != 1 || rr.Runs[0].App != AppNoop {
		t.Fatalf("skipped runs: %+v", rr)
	}
	c.do("POST", "/noop/resume", "", 200, nil)
	ai = AppInfo{}
	c.do("GET", "/noop", "", 200, &ai)
	if ai.Paused != nil {
		t.Fatalf("still paused: %+v", ai.Paused)
	}

	// History: filters and pagination (newest first).
	rr = c.runs("/runs?limit=2")
	if len(rr.Runs) != 2 || rr.NextBefore != rr.Runs[1].ID || rr.Runs[0].ID <= rr.Runs[1].ID {
		t.Fatalf("page 1: %+v", rr)
	}
	first := rr.Runs
	rr = c.runs("/runs?limit=2&before=" + itoa(rr.NextBefore))
	if len(rr.Runs) != 2 || rr.Runs[0].ID >= first[1].ID {
		t.Fatalf("page 2: %+v", rr)
	}
	rr = c.runs("/runs?app=test:counter")
	if len(rr.Runs) != 1 || rr.NextBefore != 0 {
		t.Fatalf("by app: %+v", rr)
	}
	rr = c.runs("/runs?since=" + itoa(time.Now().Add(time.Hour).Unix()))
	if len(rr.Runs) != 0 {
		t.Fatalf("since the future: %+v", rr)
	}

	// Bad input.
	c.do("GET", "/nope", "", 404, nil)
	c.do("POST", "/nope/run", "", 404, nil)
	c.do("POST", "/nope/pause", "", 404, nil)
	c.do("GET", "/runs?limit=0", "", 400, nil)
	c.do("GET", "/runs?status=weird", "", 400, nil)
	c.do("GET", "/runs?since=yesterday", "", 400, nil)
	c.do("POST", "/noop/run", `{"timeout":"soon"}`, 400, nil)
	c.do("POST", "/noop/run", `{"args":`, 400, nil)
	c.do("GET", "/runs/999", "", 404, nil)
}

// A standby answers reads and refuses run-now with 409 naming the holder.
func TestRoutesStandby(t *testing.T) {
	gin.SetMode(gin.TestMode)
	d := testdb.SQLite(t)
	a := newScheduler(t, d, fastConfig("holder"), nil)
	start(t, a)
	waitLeader(t, a)
	b := newScheduler(t, d, fastConfig("standby"), nil)
	start(t, b)
	eng := gin.New()
	eng.Use(apierr.Middleware(nil, 0))
	b.Routes(eng.Group("/api/v1/apps"))
	srv := httptest.NewServer(eng)
	defer srv.Close()
	c := apiClient{t, srv}
	var list ListResponse
	c.do("GET", "", "", 200, &list)
	if list.Leader || list.Lease.Holder != "holder" {
		t.Fatalf("standby list: %+v", list.Status)
	}
	env := c.do("POST", "/noop/run", "", 409, nil)
	if string(env["holder"]) != `"holder"` || string(env["code"]) != `"not_leader"` {
		t.Fatalf("409 does not name the holder: %v", env)
	}
	// Pauses are shared through the database.
	c.do("POST", "/noop/pause", `{"by":"bob"}`, 200, nil)
	if _, err := a.RunNow(t.Context(), RunRequest{App: AppNoop}); err == nil {
		t.Fatal("holder ran an app paused through the standby")
	}
}

func (c apiClient) runs(path string) RunsResponse {
	c.t.Helper()
	var rr RunsResponse
	c.do("GET", path, "", 200, &rr)
	return rr
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
