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

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/setest"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/projects"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

// Every file a project delivers to a consumer is recorded as an access of
// its dataset at the project's site, where the Dealer's popularity reads
// accesses: a project on a dataset and one on a list of its files, wired
// as `dynamo serve` wires them (buildProjects, the lease holder's fence).
func TestProjectDeliveriesAreAccesses(t *testing.T) {
	se := setest.Start(t, setest.Options{})
	se.Mkdir(t, "/store/m")
	for i := range 4 {
		se.Put(t, fmt.Sprintf("/store/m/%d.root", i), []byte(fmt.Sprintf("file %d", i)), false)
	}
	d := testdb.SQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := inventory.Load(ctx, d, logging.Discard(), nil, time.Now())
	must(t, err)
	doc, err := inventory.DecodeInjectDoc(strings.NewReader(`{
 "sites": [{"name": "T2_M", "storage_type": "disk", "status": "ready"}],
 "groups": [{"name": "AnalysisOps", "olevel": "dataset"}],
 "datasets": [{"name": "/M/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "b1", "files": [
   {"lfn": "/store/m/0.root", "size": 6}, {"lfn": "/store/m/1.root", "size": 6}, {"lfn": "/store/m/2.root", "size": 6}, {"lfn": "/store/m/3.root", "size": 6}]}]}],
 "dataset_replicas": [{"dataset": "/M/R-v1/AOD", "site": "T2_M", "group": "AnalysisOps"}]}`))
	must(t, err)
	_, err = store.Inject(ctx, time.Now(), doc)
	must(t, err)
	log := logrus.New()
	log.SetOutput(io.Discard)
	rcfg := registry.DefaultConfig()
	rcfg.Listen = "127.0.0.1:0"
	rcfg.Users = []registry.UserConfig{{Name: "alice", Roles: map[string]string{"registry": "user"}}}
	rcfg.Tokens = []registry.TokenConfig{{User: "alice", Token: "alice-access-token"}}
	srv, err := registry.New(registry.Options{Config: rcfg, DB: d, Log: log.WithField("component", "registry"), Inventory: store})
	must(t, err)
	pcfg := projects.Config{Tick: 20 * time.Millisecond, RetryAfter: time.Second,
		Sites:      map[string]*projects.SiteConfig{"T2_M": {SURLPrefix: se.Base}},
		Credential: projects.CredentialConfig{Cert: filepath.Join(se.PKI, "proxy.pem"), CADir: filepath.Join(se.PKI, "certificates")}}
	pcfg.Stager.BackoffStart, pcfg.Stager.Tick = 20*time.Millisecond, 20*time.Millisecond
	sch, err := scheduler.New(scheduler.Config{ServerID: "accesses", LeasePeriod: 3 * time.Second,
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
	do := func(method, path string, body any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, api+path, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer alice-access-token")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	accesses := func() int {
		t.Helper()
		rows, err := recordedAccesses{detox.DBAccesses{DB: d}}.DatasetAccesses(ctx, 0)
		must(t, err)
		n := 0
		for _, r := range rows {
			if r.Dataset != "/M/R-v1/AOD" {
				t.Fatalf("access of %q", r.Dataset)
			}
			n += r.Count
		}
		return n
	}
	if n := accesses(); n != 0 {
		t.Fatalf("%d accesses before any delivery", n)
	}
	deliver := func(project string, start map[string]any) int {
		t.Helper()
		if code, b := do("POST", "/api/v1/projects", start); code != http.StatusCreated && code != http.StatusOK {
			t.Fatalf("start %s: %d %s", project, code, b)
		}
		code, b := do("POST", "/api/v1/projects/"+project+"/processes", map[string]any{"name": "job"})
		if code != http.StatusCreated && code != http.StatusOK {
			t.Fatalf("process: %d %s", code, b)
		}
		var pr struct {
			Data struct {
				ID int64 `json:"cpid"`
			} `json:"data"`
		}
		must(t, json.Unmarshal([]byte(b), &pr))
		delivered := 0
		waitUntil(t, "two deliveries of "+project, 30*time.Second, func() bool {
			code, _ := do("POST", fmt.Sprintf("/api/v1/projects/%s/processes/%d/next", project, pr.Data.ID), nil)
			if code == http.StatusOK {
				delivered++
			}
			return delivered == 2
		})
		return delivered
	}
	n := deliver("by-dataset", map[string]any{"name": "by-dataset", "site": "T2_M", "dataset": "/M/R-v1/AOD"})
	if got := accesses(); got != n {
		t.Fatalf("after %d deliveries of a dataset project: %d accesses", n, got)
	}
	n += deliver("by-files", map[string]any{"name": "by-files", "site": "T2_M", "files": []string{"/store/m/2.root", "/store/m/3.root"}})
	if got := accesses(); got != n {
		t.Fatalf("after %d deliveries in all: %d accesses", n, got)
	}
}
