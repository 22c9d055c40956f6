package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/scheduler"
)

// runCLI runs `dynamo ARGS...` in-process and returns stdout and the error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// `dynamo app ...` against a scheduler's routes on a real HTTP server.
func TestAppCLI(t *testing.T) {
	gin.SetMode(gin.TestMode)
	d := testdb.SQLite(t)
	log := logrus.New()
	log.SetOutput(io.Discard)
	st, err := inventory.Load(context.Background(), d, log.WithField("component", "inventory"), nil, time.Now())
	must(t, err)
	sch, err := scheduler.New(scheduler.Config{ServerID: "cli", LeasePeriod: time.Second,
		Heartbeat: 100 * time.Millisecond, TestApps: true}, st, log.WithField("component", "scheduler"), prometheus.NewRegistry())
	must(t, err)
	must(t, sch.RegisterBuiltins())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sch.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "the lease", 5*time.Second, sch.Leader)
	eng := gin.New()
	eng.Use(apierr.Middleware(nil, 0)) // the error mapper dynamo serve installs
	sch.Routes(eng.Group(appAPIPath))
	srv := httptest.NewServer(eng)
	defer srv.Close()
	t.Setenv(appEnvServer, srv.URL)

	out, err := runCLI(t, "app", "list")
	must(t, err)
	for _, want := range []string{"server cli: writer (lease holder)", "APP", "noop ", "noop-writer", "test:counter", "writer"} {
		if !strings.Contains(out, want) {
			t.Errorf("app list lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, "app", "run", "test:counter", "--wait", "--", "--sleep", "1ms")
	must(t, err)
	if !strings.Contains(out, "run 1 of test:counter: ok") || !strings.Contains(out, "1 updates applied") {
		t.Errorf("app run: %s", out)
	}
	out, err = runCLI(t, "app", "run", "noop", "--wait", "--", "--fail")
	if err == nil || !strings.Contains(out, "failed") || !strings.Contains(out, "failing as asked") {
		t.Errorf("failing run: %s, %v", out, err)
	}
	out, err = runCLI(t, "app", "pause", "noop", "--reason", "testing")
	must(t, err)
	if !strings.Contains(out, "paused noop") {
		t.Errorf("pause: %s", out)
	}
	out, err = runCLI(t, "app", "list")
	must(t, err)
	if !strings.Contains(out, ": testing") {
		t.Errorf("list does not show the pause:\n%s", out)
	}
	_, err = runCLI(t, "app", "run", "noop")
	if err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("run of a paused app: %v", err)
	}
	out, err = runCLI(t, "app", "runs", "noop", "--json")
	must(t, err)
	var rr scheduler.RunsResponse
	must(t, json.Unmarshal([]byte(out), &rr))
	if len(rr.Runs) != 2 || rr.Runs[0].Status != scheduler.StatusSkipped || rr.Runs[1].Status != scheduler.StatusFailed {
		t.Errorf("runs of noop: %+v", rr.Runs)
	}
	out, err = runCLI(t, "app", "runs", "noop", "-o", "json")
	must(t, err)
	if err := json.Unmarshal([]byte(out), &rr); err != nil || len(rr.Runs) != 2 {
		t.Errorf("app runs -o json: %v\n%s", err, out)
	}
	out, err = runCLI(t, "app", "list", "-o", "json")
	must(t, err)
	var l scheduler.ListResponse
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Apps) == 0 || l.Server == "" {
		t.Errorf("app list -o json: %v\n%s", err, out)
	}
	for _, a := range l.Apps {
		if a.Name == "noop" && (a.Paused == nil || a.Paused.Reason != "testing") {
			t.Errorf("app list -o json does not show the pause: %+v", a)
		}
	}
	out, err = runCLI(t, "app", "list", "-o", "table")
	must(t, err)
	if !strings.Contains(out, "APP") || json.Valid([]byte(strings.TrimSpace(out))) {
		t.Errorf("app list -o table:\n%s", out)
	}
	out, err = runCLI(t, "app", "runs", "--status", "ok")
	must(t, err)
	if !strings.Contains(out, "test:counter") || strings.Contains(out, "skipped") {
		t.Errorf("runs --status ok:\n%s", out)
	}
	out, err = runCLI(t, "app", "resume", "noop")
	must(t, err)
	if !strings.Contains(out, "resumed noop") {
		t.Errorf("resume: %s", out)
	}
	if _, err := runCLI(t, "app", "pause", "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("pause of an unknown app: %v", err)
	}
	if _, err := runCLI(t, "app", "list", "--server", "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "is dynamo serve running") {
		t.Errorf("unreachable server: %v", err)
	}
}

func TestAppCheckSequences(t *testing.T) {
	dir := t.TempDir()
	good, bad := dir+"/good.seq", dir+"/bad.seq"
	must(t, os.WriteFile(good, []byte("<d> = $(DYNAMO_BASE)/exec/detox\n[SEQUENCE detox] restart\n& <d> --policy P\nWAIT 3600\n"), 0o644))
	must(t, os.WriteFile(bad, []byte("{a} = noop\n[SEQUENCE s]\n| {a}\nWAIT later\n^ <a>\n"), 0o644))
	out, err := runCLI(t, "app", "check-sequences", good)
	if err != nil || !strings.Contains(out, "sequence detox (restart): 2 steps, 1 runs") || !strings.Contains(out, "OK") {
		t.Fatalf("good file: %q %v", out, err)
	}
	_, err = runCLI(t, "app", "check-sequences", bad)
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "bad.seq:4: WAIT later") || !strings.Contains(err.Error(), "bad.seq:5: <a> runs write-enabled") {
		t.Fatalf("bad file: %v", err)
	}
}
