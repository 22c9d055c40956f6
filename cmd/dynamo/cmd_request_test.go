package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

// startAPI serves the sample inventory on plain HTTP on loopback, with a
// token for user "op" (operator) and anonymous reads.
func startAPI(t *testing.T) string {
	t.Helper()
	d := testdb.SQLite(t)
	log := logrus.New()
	log.SetOutput(io.Discard)
	ctx := context.Background()
	st, err := inventory.Load(ctx, d, log.WithField("component", "inventory"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := injectSample(ctx, st); err != nil {
		t.Fatal(err)
	}
	cfg := registry.DefaultConfig()
	cfg.Users = []registry.UserConfig{{Name: "op", Roles: map[string]string{"registry": "operator"}}}
	cfg.Tokens = []registry.TokenConfig{{User: "op", Token: "tok"}}
	srv, err := registry.New(registry.Options{Config: cfg, DB: d, Log: log.WithField("component", "registry"), Inventory: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(runCtx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCLIAgainstAPI(t *testing.T) {
	url := startAPI(t)
	t.Setenv("DYNAMO_SERVER", url)
	t.Setenv("X509_CERT_DIR", "")
	ds := "/ZeroBias/Run2018A-17Sep2018-v1/MINIAOD"

	out, err := run(t, "request", "copy", ds, "--site", "T2_*", "--n", "2", "--group", "DataOps", "--token", "tok", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r registry.Request
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.User != "op" || r.N != 2 || len(r.Sites) != 2 {
		t.Fatalf("copy: %s %v", out, err)
	}
	if out, err = run(t, "request", "list", "--status", "new"); err != nil || !strings.Contains(out, ds) || !strings.Contains(out, "T2_CH_CERN,T2_US_MIT") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err = run(t, "request", "cancel", "1", "--token", "tok"); err != nil || !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: %v\n%s", err, out)
	}
	// Errors from the server reach the user with the field named.
	if _, err = run(t, "request", "copy", "/No/Such/DATASET", "--site", "T2_US_MIT", "--token", "tok"); err == nil || !strings.Contains(err.Error(), "items[0]") {
		t.Fatalf("bad copy: %v", err)
	}
	if _, err = run(t, "request", "copy", ds, "--site", "T2_US_MIT"); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("anonymous copy: %v", err)
	}

	if out, err = run(t, "lock", "add", "/ZeroBias/*", "--expires", "2099-01-01", "--site", "T2_US_MIT", "--comment", "keep", "--token", "tok"); err != nil || !strings.Contains(out, "/ZeroBias/*") {
		t.Fatalf("lock add: %v\n%s", err, out)
	}
	set := filepath.Join(t.TempDir(), "set.json")
	if err := os.WriteFile(set, []byte(`[{"item": "/Cosmics/*", "expires": "2099-01-01T00:00:00Z"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err = run(t, "lock", "set", "svc", set, "--token", "tok", "--json"); err != nil || !strings.Contains(out, `"service":"svc"`) {
		t.Fatalf("lock set: %v\n%s", err, out)
	}
	var locks []registry.Lock
	out, err = run(t, "lock", "list", "--user", "op", "--json")
	if err != nil || json.Unmarshal([]byte(out), &locks) != nil || len(locks) != 2 {
		t.Fatalf("lock list: %v\n%s", err, out)
	}
	if out, err = run(t, "lock", "remove", "--service", "svc", "--token", "tok"); err != nil || !strings.Contains(out, "/Cosmics/*") {
		t.Fatalf("lock remove: %v\n%s", err, out)
	}

	if out, err = run(t, "inventory", "sites"); err != nil || !strings.Contains(out, "T2_US_MIT") {
		t.Fatalf("inventory sites: %v\n%s", err, out)
	}
	if out, err = run(t, "inventory", "datasets", "/ZeroBias/*", "--json"); err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(out, ds) {
		t.Fatalf("inventory datasets: %v\n%s", err, out)
	}
	if out, err = run(t, "inventory", "replicas", ds); err != nil || !strings.Contains(out, "SITE") {
		t.Fatalf("inventory replicas: %v\n%s", err, out)
	}

	// Server and credentials from the configuration file's registry.client.
	t.Setenv("DYNAMO_SERVER", "")
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	cfgFile := filepath.Join(dir, "dynamo.yaml")
	if err := os.WriteFile(tok, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, []byte("registry:\n  client:\n    server: "+url+"\n    token_file: "+tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err = run(t, "--config", cfgFile, "lock", "add", "/TTJets*", "--expires", "2099-01-01"); err != nil || !strings.Contains(out, "/TTJets*") {
		t.Fatalf("lock add from config: %v\n%s", err, out)
	}
	if _, err = run(t, "--config", cfgFile, "lock", "add", "/TTJets*", "--expires", "2099-01-01", "--token", "wrong"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a flag token must win over the file's: %v", err)
	}
}
