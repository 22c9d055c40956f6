package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/setest"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testutil"
	"github.com/dynamo-go/dynamo/projects"
)

// `dynamo project ...` against projects.Routes on a real HTTP server, with
// the embedded SRM SE behind the manager.
func TestProjectCLI(t *testing.T) {
	gin.SetMode(gin.TestMode)
	se := setest.Start(t, setest.Options{})
	se.Mkdir(t, "/store/c")
	se.Put(t, "/store/c/1.root", []byte("one"), false)
	se.Put(t, "/store/c/2.root", []byte("two"), false)
	d := testdb.SQLite(t)
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg := projects.Config{Tick: 20 * time.Millisecond, RetryAfter: time.Second,
		Sites:      map[string]*projects.SiteConfig{"T2_C": {SURLPrefix: se.Base}},
		Credential: projects.CredentialConfig{Cert: filepath.Join(se.PKI, "proxy.pem"), CADir: filepath.Join(se.PKI, "certificates")}}
	cfg.Stager.BackoffStart, cfg.Stager.Tick = 20*time.Millisecond, 20*time.Millisecond
	svc, err := projects.NewServices(cfg, d, nil, log.WithField("component", "projects"), nil, nil)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eng := gin.New()
	eng.Use(apierr.Middleware(nil, 0)) // the error mapper dynamo serve installs
	projects.Routes(eng.Group(projectAPIPath), svc.Manager)
	srv := httptest.NewServer(eng)
	defer srv.Close()
	t.Setenv(appEnvServer, srv.URL)

	out, err := runCLI(t, "project", "start", "cli1", "--site", "T2_C", "--files", "/store/c/1.root,/store/c/2.root")
	must(t, err)
	if !strings.Contains(out, "project cli1: running") {
		t.Errorf("start: %s", out)
	}
	if _, err := runCLI(t, "project", "start", "cli1", "--site", "T2_C", "--files", "/store/c/1.root"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second start: %v", err)
	}
	out, err = runCLI(t, "project", "process", "cli1", "--name", "job")
	must(t, err)
	cpid := strings.TrimSpace(out)
	out, err = runCLI(t, "project", "next", "cli1", cpid, "--wait", "20s")
	must(t, err)
	parts := strings.Split(strings.TrimSpace(out), "\t")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "https://") || !strings.HasPrefix(parts[1], "/store/c/") {
		t.Fatalf("next: %q", out)
	}
	_, err = runCLI(t, "project", "report", "cli1", cpid, parts[1])
	must(t, err)
	if _, err := runCLI(t, "project", "report", "cli1", cpid, parts[1]); err == nil {
		t.Error("second report accepted")
	}
	// Listings: -o json prints the documented shapes, -o table a table.
	out, err = runCLI(t, "project", "list", "-o", "json")
	must(t, err)
	var list []projects.Summary
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].Name != "cli1" || list[0].Files != 2 || list[0].State != "running" {
		t.Errorf("project list -o json: %v\n%s", err, out)
	}
	out, err = runCLI(t, "project", "list", "-o", "table")
	must(t, err)
	if !strings.HasPrefix(out, "PROJECT") || !strings.Contains(out, "cli1") || json.Valid([]byte(out)) {
		t.Errorf("project list -o table:\n%s", out)
	}
	out, err = runCLI(t, "project", "status", "cli1", "-o", "json")
	must(t, err)
	var sum projects.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Name != "cli1" || sum.Counts[projects.FileConsumed] != 1 || len(sum.Consumers) != 1 {
		t.Errorf("project status -o json: %v\n%s", err, out)
	}
	out, err = runCLI(t, "project", "status", "cli1")
	must(t, err)
	if !strings.Contains(out, "consumed  1") || !strings.Contains(out, "job") {
		t.Errorf("status:\n%s", out)
	}
	out, err = runCLI(t, "project", "end", "cli1")
	must(t, err)
	if !strings.Contains(out, "recovery list (1 files not consumed)") {
		t.Errorf("end:\n%s", out)
	}
	out, err = runCLI(t, "project", "next", "cli1", cpid)
	must(t, err)
	if out != "" {
		t.Errorf("next after end printed %q", out)
	}
}

// The serve component: off without a configuration; with one it builds
// the manager, the stager and the estimator, and runs until cancelled.
func TestServeProjectsComponent(t *testing.T) {
	pki := setest.PKI(t)
	d := testdb.SQLite(t)
	log := logrus.New()
	log.SetOutput(io.Discard)
	logs := logtest.NewLocal(log)
	t.Setenv(envProjectsConfig, "")
	s, err := testAssembly(t, &env{log: log, db: d}, serveOptions{})
	must(t, err)
	must(t, s.buildProjects(context.Background()))
	if s.projects != nil {
		t.Fatalf("without configuration: projects %v", s.projects)
	}
	cfgPath := filepath.Join(t.TempDir(), "projects.yaml")
	must(t, os.WriteFile(cfgPath, []byte("tick: 50ms\ncredential: {cert: "+filepath.Join(pki, "proxy.pem")+", ca_dir: "+filepath.Join(pki, "certificates")+"}\n"), 0o644))
	s, err = testAssembly(t, &env{log: log, db: d}, serveOptions{projectsConfig: cfgPath})
	must(t, err)
	must(t, s.buildProjects(context.Background()))
	if s.projects == nil || s.projects.Manager == nil || s.projects.Stager == nil || s.projects.Estimator == nil {
		t.Fatalf("built %+v", s.projects)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.projects.Run(ctx) }()
	testutil.Eventually(t, time.Minute, "the stager to start polling", func() bool {
		for _, e := range logs.AllEntries() {
			if e.Message == "stager resumed persisted requests" {
				return true
			}
		}
		return false
	})
	select {
	case err := <-done:
		t.Fatalf("run ended before it was cancelled: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	must(t, os.WriteFile(cfgPath, []byte("lookahed: 3\n"), 0o644))
	if _, err := testAssembly(t, &env{log: log, db: d}, serveOptions{projectsConfig: cfgPath}); err == nil || !strings.Contains(err.Error(), "lookahed") {
		t.Errorf("bad configuration: %v", err)
	}
}
