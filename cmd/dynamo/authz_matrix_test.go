package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/setest"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/projects"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

// The authorization matrix over every write route of the stager and the
// projects, mounted behind the REST server exactly as `dynamo serve`
// mounts them (buildProjects): for each route, the owner, another user, an
// operator and an anonymous caller. Something owned by alice is usable by
// alice and the operator, refused to bob (403) and to anonymous (401);
// the stager requests the projects component makes for itself (its pins)
// are the system's, for operators only.
func TestAuthzMatrixStagerAndProjects(t *testing.T) {
	se := setest.Start(t, setest.Options{})
	se.Mkdir(t, "/store/m")
	for i := range 8 {
		se.Put(t, fmt.Sprintf("/store/m/%d.root", i), []byte(fmt.Sprintf("file %d", i)), false)
	}
	d := testdb.SQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := inventory.Load(ctx, d, logging.Discard(), nil, time.Now())
	must(t, err)
	log := logrus.New()
	log.SetOutput(io.Discard)

	tokens := map[string]string{"alice": "alice-matrix-token", "bob": "bob-matrix-token", "op": "op-matrix-token"}
	rcfg := registry.DefaultConfig()
	rcfg.Listen = "127.0.0.1:0"
	rcfg.Users = []registry.UserConfig{
		{Name: "alice", Roles: map[string]string{"registry": "user"}},
		{Name: "bob", Roles: map[string]string{"registry": "user"}},
		{Name: "op", Roles: map[string]string{"*": "operator"}},
	}
	for u, tok := range tokens {
		rcfg.Tokens = append(rcfg.Tokens, registry.TokenConfig{User: u, Token: tok})
	}
	srv, err := registry.New(registry.Options{Config: rcfg, DB: d, Log: log.WithField("component", "registry"), Inventory: store})
	must(t, err)
	pcfg := projects.Config{Tick: 20 * time.Millisecond, RetryAfter: time.Second,
		Sites:      map[string]*projects.SiteConfig{"T2_M": {SURLPrefix: se.Base}},
		Credential: projects.CredentialConfig{Cert: filepath.Join(se.PKI, "proxy.pem"), CADir: filepath.Join(se.PKI, "certificates")}}
	pcfg.Stager.BackoffStart, pcfg.Stager.Tick = 20*time.Millisecond, 20*time.Millisecond
	// The projects run as a background writer of the lease holder.
	sch, err := scheduler.New(scheduler.Config{ServerID: "matrix", LeasePeriod: 3 * time.Second,
		Heartbeat: time.Second}, store, log.WithField("component", "scheduler"), nil)
	must(t, err)
	s := &server{env: &env{log: log, db: d}, cfg: serveConfig{projects: &pcfg}, log: log.WithField("component", "serve"),
		registry: srv, metrics: srv.Metrics(), store: store, scheduler: sch}
	must(t, s.buildProjects(ctx))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	done := make(chan error, 2)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- srv.Serve(runCtx, ln) }()
	go func() { done <- sch.Run(runCtx) }()
	waitUntil(t, "the writer lease", 10*time.Second, sch.Leader)
	defer func() { stop(); <-done; <-done }()
	api := "http://" + ln.Addr().String()

	do := func(who, method, path string, body any) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = strings.NewReader(string(b))
		}
		req, _ := http.NewRequest(method, api+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		if who != "anonymous" {
			req.Header.Set("Authorization", "Bearer "+tokens[who])
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var seq int
	// Each case makes a fresh object owned by alice (so that a success by
	// one caller does not change what the next one meets) and returns the
	// route to call on it.
	type route struct {
		name   string
		method string
		make   func() (path string, body any)
	}
	stagerReq := func() int64 {
		code, b := do("alice", "POST", "/api/v1/stager/requests", map[string]any{"kind": "get", "surl": se.Base + "/store/m/0.root"})
		if code != http.StatusAccepted {
			t.Fatalf("stager submit: %d %s", code, b)
		}
		var r struct {
			Data struct {
				ID int64 `json:"id"`
			} `json:"data"`
		}
		must(t, json.Unmarshal([]byte(b), &r))
		return r.Data.ID
	}
	project := func() string {
		seq++
		name := fmt.Sprintf("m%d", seq)
		code, b := do("alice", "POST", "/api/v1/projects", map[string]any{"name": name, "site": "T2_M", "files": []string{"/store/m/1.root", "/store/m/2.root"}})
		if code != http.StatusCreated || !strings.Contains(b, `"owner":"alice"`) {
			t.Fatalf("project start: %d %s", code, b)
		}
		return name
	}
	process := func(name string) string {
		code, b := do("alice", "POST", "/api/v1/projects/"+name+"/processes", map[string]any{"name": "job"})
		if code != http.StatusCreated {
			t.Fatalf("establish: %d %s", code, b)
		}
		var r struct {
			Data struct {
				CPID int64 `json:"cpid"`
			} `json:"data"`
		}
		must(t, json.Unmarshal([]byte(b), &r))
		return fmt.Sprint(r.Data.CPID)
	}
	routes := []route{
		{"stager get", "GET", func() (string, any) { return fmt.Sprintf("/api/v1/stager/requests/%d", stagerReq()), nil }},
		{"stager release", "POST", func() (string, any) { return fmt.Sprintf("/api/v1/stager/requests/%d/release", stagerReq()), nil }},
		{"stager abort", "DELETE", func() (string, any) { return fmt.Sprintf("/api/v1/stager/requests/%d", stagerReq()), nil }},
		{"project end", "POST", func() (string, any) { return "/api/v1/projects/" + project() + "/end", nil }},
		{"project attach", "POST", func() (string, any) {
			return "/api/v1/projects/" + project() + "/processes", map[string]any{"name": "x"}
		}},
		{"project next file", "POST", func() (string, any) {
			p := project()
			return "/api/v1/projects/" + p + "/processes/" + process(p) + "/next", nil
		}},
		{"project file status", "POST", func() (string, any) {
			p := project()
			return "/api/v1/projects/" + p + "/processes/" + process(p) + "/files", map[string]any{"filename": "/store/m/1.root", "status": "skipped"}
		}},
		{"project end process", "POST", func() (string, any) {
			p := project()
			return "/api/v1/projects/" + p + "/processes/" + process(p) + "/end", map[string]any{"status": "completed"}
		}},
	}
	want := map[string]func(int) bool{
		"alice":     func(c int) bool { return c < 300 || c == http.StatusConflict }, // allowed (a conflict is the route's own answer)
		"op":        func(c int) bool { return c < 300 || c == http.StatusConflict },
		"bob":       func(c int) bool { return c == http.StatusForbidden },
		"anonymous": func(c int) bool { return c == http.StatusUnauthorized || c == http.StatusForbidden },
	}
	for _, rt := range routes {
		for _, who := range []string{"bob", "anonymous", "alice", "op"} {
			path, body := rt.make()
			code, b := do(who, rt.method, path, body)
			if !want[who](code) {
				t.Errorf("%s as %s: %d %s", rt.name, who, code, b)
			}
		}
	}
	// A project start by anyone authenticated is theirs; anonymous cannot.
	if code, b := do("anonymous", "POST", "/api/v1/projects", map[string]any{"name": "anon", "site": "T2_M", "files": []string{"/store/m/1.root"}}); code != http.StatusUnauthorized {
		t.Errorf("anonymous start: %d %s", code, b)
	}
	// The owner is the caller, never what the body says.
	if code, b := do("bob", "POST", "/api/v1/stager/requests", map[string]any{"kind": "get", "surl": se.Base + "/store/m/0.root", "owner": "user:alice"}); code != http.StatusBadRequest {
		t.Errorf("stager submit with an owner: %d %s", code, b)
	}
	// The projects component's own pins: the system's.
	name := project()
	cpid := process(name)
	var pin int64
	waitUntil(t, "a staged file of the project", 20*time.Second, func() bool {
		code, b := do("alice", "POST", "/api/v1/projects/"+name+"/processes/"+cpid+"/next", nil)
		if code != http.StatusOK {
			return false
		}
		_ = b
		for id := int64(1); id < 100; id++ {
			if c, body := do("op", "GET", fmt.Sprintf("/api/v1/stager/requests/%d", id), nil); c == http.StatusOK && strings.Contains(body, `"owner":"projects"`) {
				pin = id
				return true
			}
		}
		return false
	})
	for _, who := range []string{"alice", "bob"} {
		if code, b := do(who, "POST", fmt.Sprintf("/api/v1/stager/requests/%d/release", pin), nil); code != http.StatusForbidden {
			t.Errorf("%s released the projects component's pin: %d %s", who, code, b)
		}
	}
}
