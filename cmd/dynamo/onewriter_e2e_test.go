package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The README's "Adding a site" while `dynamo serve` runs: the CLI sends
// the document to the server (the writer), which applies it; the new site
// shows through the server's REST API, and the server's own writes go on
// working right after (a REST injection succeeds). Before the one-writer
// rule the CLI wrote the change log behind the server's back, and every
// later write of the server failed with "change log seq N already written".
func TestAddingASiteWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a server")
	}
	t.Setenv("DYNAMO_SERVER", "")
	t.Setenv("DYNAMO_TOKEN", "")
	bin := buildDynamo(t)
	dir := t.TempDir()
	port := freePortNumber(t)
	const token = "add-a-site-token"
	must(t, os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600))
	cfg := filepath.Join(dir, "dynamo.yaml")
	// Relative paths: resolved against the configuration's directory, so
	// the CLI below finds the same database and token from anywhere.
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`database: sqlite:dynamo.db
registry:
  listen: 127.0.0.1:%s
  users: [{name: ops, roles: {"*": admin}}]
  tokens: [{user: ops, token_file: token}]
  client: {token_file: token}
scheduler: {lease_period: 3s, heartbeat: 1s}
`, port)), 0o644))
	startServeArgs(t, bin, dir, "serve", "serve", "--config", cfg, "--sample")
	base := "http://127.0.0.1:" + port
	waitUntil(t, "the server to hold the writer lease", 60*time.Second, func() bool {
		return strings.Contains(apiCall("GET", base+"/api/v1/apps", token, "").body, `"leader":true`)
	})
	waitUntil(t, "the sample inventory", 30*time.Second, func() bool {
		return strings.Contains(apiCall("GET", base+"/api/v1/sites", token, "").body, `"name"`)
	})

	site := filepath.Join(dir, "site.json")
	must(t, os.WriteFile(site, []byte(`{"sites": [{"name": "T2_XX_New", "storage_type": "disk", "status": "ready",
"backend": "davs://se.example.org:443/store", "quotas": {"Default": 500000000000}}]}`), 0o644))
	out, err := runCLI(t, "--config", cfg, "inventory", "inject", site)
	if err != nil {
		t.Fatalf("inventory inject while serving: %v\n%s", err, out)
	}
	if !strings.Contains(out, "injected") {
		t.Errorf("inject output: %q", out)
	}

	// Visible through the server at once: the server made the write.
	a := apiCall("GET", base+"/api/v1/sites", token, "")
	if a.code != http.StatusOK || !strings.Contains(a.body, `"T2_XX_New"`) {
		t.Fatalf("sites after the CLI injection: %d %s", a.code, a.body)
	}
	// And the server keeps writing: a REST injection right after.
	a = apiCall("POST", base+"/api/v1/injections/sync", token,
		`{"sites": [{"name": "T2_XX_After", "storage_type": "disk", "status": "ready"}]}`)
	if a.code != http.StatusOK {
		t.Fatalf("REST injection after the CLI's: %d %s", a.code, a.body)
	}
	var res struct {
		Updates int `json:"updates"`
	}
	if err := json.Unmarshal([]byte(a.body), &res); err != nil || res.Updates == 0 {
		t.Fatalf("REST injection: %s (%v)", a.body, err)
	}
	// Detox and the Dealer from the CLI run on the server too.
	if out, err := runCLI(t, "--config", cfg, "dealer", "run", "--dry-run"); err != nil || !strings.Contains(out, "on the running server") {
		t.Errorf("dealer run while serving: %v\n%s", err, out)
	}
	// A flag the server cannot honour is refused, not silently dropped.
	if _, err := runCLI(t, "--config", cfg, "dealer", "run", "--seed", "7"); err == nil || !strings.Contains(err.Error(), "--seed") {
		t.Errorf("dealer run --seed while serving: %v", err)
	}
}

// Read commands never create or migrate a database.
func TestReadCommandsNeedAnExistingDatabase(t *testing.T) {
	t.Setenv("DYNAMO_SERVER", "")
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "missing.db")
	for _, args := range [][]string{{"inventory", "sites"}, {"inventory", "datasets"}, {"fileop", "status"}, {"dealer", "cycles"}} {
		_, err := runCLI(t, append([]string{"--db", dsn}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("%v on a missing database: %v", args, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a read command created the database (%v)", err)
	}
}
