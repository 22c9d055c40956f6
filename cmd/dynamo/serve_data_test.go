package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dynamo serve answers Dynamo's /data inventory statistics, application
// locks (which stop the scheduler running the app) and Detox summaries,
// and the policy diff over REST and in the console (in Chromium), on the
// live snapshot: the Default partition's policy protects datasets with
// fewer than two full copies; counted in the partition (T2_A only) both
// replicas at T2_A are protected, counted in the inventory /Big goes.
func TestServeDataRoutesAndPolicyDiff(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs dynamo serve")
	}
	chrome := findChromium(t)
	bin := buildDynamo(t)
	dir := t.TempDir()
	port := freePortNumber(t)
	const token = "data-test-token"
	dsn := "sqlite:" + filepath.Join(dir, "dynamo.db")
	pol, err := os.ReadFile("testdata/detox_copycount_policy.txt")
	require.NoError(t, err)
	polFile := filepath.Join(dir, "Default.txt")
	require.NoError(t, os.WriteFile(polFile, pol, 0o644))
	cfg := filepath.Join(dir, "dynamo.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`database: %s
registry:
  listen: 127.0.0.1:%s
  users: [{name: ops, roles: {"*": admin}}, {name: reader, roles: {registry: user}}]
  tokens: [{user: ops, token: %s}, {user: reader, token: reader-token}]
scheduler: {lease_period: 5s, heartbeat: 1s}
detox:
  partitions:
    Default: {policy: %s, copy_counts: partition}
`, dsn, port, token, polFile)), 0o644))
	startServeArgs(t, bin, dir, "serve", "serve", "--config", cfg)
	base := "http://127.0.0.1:" + port
	waitUntil(t, "the server to be ready", 90*time.Second, func() bool {
		return apiCall("GET", base+"/readyz", "", "").code == http.StatusOK
	})
	inv, err := os.ReadFile("testdata/detox_inventory.json")
	require.NoError(t, err)
	waitUntil(t, "the inventory to be injected", 60*time.Second, func() bool {
		a := apiCall("POST", base+"/api/v1/injections/sync", token, string(inv))
		require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, a.code, "inject: %s %v", a.body, a.err)
		return a.code == http.StatusOK
	})

	// The policy diff over REST: the same policy under both scopes.
	a := apiCall("POST", base+"/api/v1/detox/diff", token, `{"partition": "Default", "copy_counts_a": "partition", "copy_counts_b": "inventory"}`)
	require.Equal(t, http.StatusOK, a.code, a.body)
	var rep struct {
		A, B struct {
			Policy     string `json:"policy"`
			CopyCounts string `json:"copy_counts"`
		}
		Freed int64 `json:"freed_bytes"`
		Sites []struct {
			Site    string `json:"site"`
			Freed   int64  `json:"freed_bytes"`
			Changes []struct {
				Dataset string `json:"dataset"`
				Size    int64  `json:"size"`
				A, B    struct {
					Decision string `json:"decision"`
					Line     int    `json:"line"`
					Rule     string `json:"rule"`
				}
			} `json:"changes"`
		} `json:"sites"`
	}
	require.NoError(t, json.Unmarshal([]byte(a.body), &rep))
	require.Equal(t, "partition", rep.A.CopyCounts)
	require.Equal(t, "configured Default.txt", rep.A.Policy, "the policy is named, its server path is not shown")
	require.Equal(t, "inventory", rep.B.CopyCounts)
	require.Equal(t, int64(700), rep.Freed)
	require.Len(t, rep.Sites, 1)
	require.Equal(t, "T2_A", rep.Sites[0].Site)
	big := rep.Sites[0].Changes[0]
	require.Equal(t, "/Big/R-v1/AOD", big.Dataset)
	require.Equal(t, "protect", big.A.Decision)
	require.Equal(t, 5, big.A.Line)
	require.Equal(t, "Protect dataset.num_full_disk_copy < 2", big.A.Rule)
	require.Equal(t, "delete", big.B.Decision)

	// Against a candidate text: protecting /Small by name changes only the
	// line that protects it.
	candidate := strings.Replace(string(pol), "Dismiss", "Protect dataset.name == /Small/*/*\nDismiss", 1)
	body, _ := json.Marshal(map[string]string{"partition": "Default", "policy_b": candidate, "copy_counts_b": "inventory"})
	a = apiCall("POST", base+"/api/v1/detox/diff", token, string(body))
	require.Equal(t, http.StatusOK, a.code, a.body)
	require.Contains(t, a.body, `"rule":"Protect dataset.name == /Small/*/*"`)
	// Bad input is a 400 naming the problem; readers cannot run diffs.
	for _, bad := range []string{`{"partition": "Default", "policy_b": "Partition Default\nOn nonsense ==="}`,
		`{"partition": "Nope"}`, `{"partition": "Default", "copy_counts_a": "site"}`, `{"partition": "Default", "colour": "red"}`, `{}`} {
		a = apiCall("POST", base+"/api/v1/detox/diff", token, bad)
		require.Equal(t, http.StatusBadRequest, a.code, "%s: %s", bad, a.body)
		require.Contains(t, a.body, `"errorType":"bad_request"`, bad)
	}
	require.Equal(t, http.StatusForbidden, apiCall("POST", base+"/api/v1/detox/diff", "reader-token", `{"partition": "Default"}`).code)

	// The console shows the same diff, in a browser.
	b := newBrowser(t, chrome, base)
	b.open("/detox", "#diff-link")
	got := b.open("/detox/diff?partition=Default&copy_counts_a=partition&copy_counts_b=inventory", "table.diff")
	require.Contains(t, got, "/Big/R-v1/AOD")
	require.Contains(t, got, "Protect dataset.num_full_disk_copy < 2")
	require.Contains(t, got, "line 5")
	require.Contains(t, b.text("#freed"), "700")
	require.Contains(t, b.text("h3.site"), "T2_A")
	b.shot("detox-diff")
	require.Contains(t, b.open("/detox/diff?partition=Default", "#no-changes"), "No decision changes")
	require.Contains(t, b.open("/detox/diff?partition=Default&copy_counts_b=site", "#diff-error"), "copy counts scope")

	// Dynamo's /data statistics on the same inventory.
	a = apiCall("GET", base+"/data/inventory/stats/size?list_by=site", "", "")
	require.Equal(t, http.StatusOK, a.code, a.body)
	require.Contains(t, a.body, `"statistic":"size"`)
	require.Contains(t, a.body, `{"key":"T2_A","size":1e-9}`)
	a = apiCall("GET", base+"/data/inventory/groups", "", "")
	require.Contains(t, a.body, `"name":"AnalysisOps"`)

	// An application lock stops the scheduler running Detox; unlocking
	// lets it run, and its cycle shows in Dynamo's summary.
	t.Setenv(appEnvToken, token)
	waitUntil(t, "the server to hold the writer lease", 30*time.Second, func() bool {
		out, err := runCLI(t, "app", "list", "--server", base)
		return err == nil && strings.Contains(out, "writer (lease holder)")
	})
	a = apiCall("POST", base+"/data/applock/lock", token, `{"app": "detox:Default", "note": "policy review"}`)
	require.Equal(t, http.StatusOK, a.code, a.body)
	require.Contains(t, a.body, `"message":"Success"`)
	_, err = runCLI(t, "app", "run", "detox:Default", "--read-only", "--wait", "--server", base)
	require.Error(t, err)
	require.Contains(t, err.Error(), "policy review")
	a = apiCall("GET", base+"/api/v1/apps/detox:Default", "", "")
	require.Contains(t, a.body, `"applock":{"app":"detox:Default","user":"ops"`)
	a = apiCall("POST", base+"/data/applock/unlock", token, `{"app": "detox:Default"}`)
	require.Contains(t, a.body, `"message":"Unlocked"`)
	_, err = runCLI(t, "app", "run", "detox:Default", "--read-only", "--wait", "--server", base)
	require.NoError(t, err)
	a = apiCall("GET", base+"/data/detox/summary", "", "")
	require.Equal(t, http.StatusOK, a.code, a.body)
	require.Contains(t, a.body, `"partition":"Default"`)
	require.Contains(t, a.body, `"name":"T2_A"`)
	require.Contains(t, a.body, `"protect_bytes":1000`)
}
