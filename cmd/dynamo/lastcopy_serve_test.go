package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/db"
)

// lastCopyInventory: sole copies at an mss, a buffer and an unknown-type
// site, a sole incomplete copy, a disk copy whose only other copy is at a
// morgue site, and a dataset with two disk copies.
const lastCopyInventory = `{
 "sites": [
  {"name": "T1_X_MSS", "storage_type": "mss", "status": "ready"},
  {"name": "T1_X_Buffer", "storage_type": "buffer", "status": "ready"},
  {"name": "T3_X_Unknown", "storage_type": "unknown", "status": "ready"},
  {"name": "T2_A", "storage_type": "disk", "status": "ready"},
  {"name": "T2_B", "storage_type": "disk", "status": "ready"},
  {"name": "T2_Morgue", "storage_type": "disk", "status": "morgue"}
 ],
 "groups": [{"name": "DataOps", "olevel": "dataset"}],
 "datasets": [
  {"name": "/OnTape/R-v1/RAW", "status": "valid", "data_type": "data", "blocks": [{"name": "b1", "files": [{"lfn": "/store/tape/1.root", "size": 100}]}]},
  {"name": "/OnBuffer/R-v1/RAW", "status": "valid", "data_type": "data", "blocks": [{"name": "b1", "files": [{"lfn": "/store/buffer/1.root", "size": 100}]}]},
  {"name": "/OnUnknown/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "b1", "files": [{"lfn": "/store/unknown/1.root", "size": 100}]}]},
  {"name": "/Partial/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "b1", "files": [
    {"lfn": "/store/partial/1.root", "size": 50}, {"lfn": "/store/partial/2.root", "size": 50}]}]},
  {"name": "/MorgueOther/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "b1", "files": [{"lfn": "/store/morgue/1.root", "size": 100}]}]},
  {"name": "/Redundant/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "b1", "files": [{"lfn": "/store/redundant/1.root", "size": 100}]}]}
 ],
 "dataset_replicas": [
  {"dataset": "/OnTape/R-v1/RAW", "site": "T1_X_MSS", "group": "DataOps"},
  {"dataset": "/OnBuffer/R-v1/RAW", "site": "T1_X_Buffer", "group": "DataOps"},
  {"dataset": "/OnUnknown/R-v1/AOD", "site": "T3_X_Unknown", "group": "DataOps"},
  {"dataset": "/MorgueOther/R-v1/AOD", "site": "T2_A", "group": "DataOps"},
  {"dataset": "/MorgueOther/R-v1/AOD", "site": "T2_Morgue", "group": "DataOps"},
  {"dataset": "/Redundant/R-v1/AOD", "site": "T2_A", "group": "DataOps"},
  {"dataset": "/Redundant/R-v1/AOD", "site": "T2_B", "group": "DataOps"}
 ],
 "block_replicas": [
  {"block": "/Partial/R-v1/AOD#b1", "site": "T2_A", "group": "DataOps", "files": ["/store/partial/1.root"]}
 ]
}`

// The policy deletes everything everywhere, as a new user might try.
const deleteEverything = `Partition Default
On always
When site.occupancy > 0
Until site.occupancy < 0
Delete
`

// TestServeKeepsLastCopies runs Detox through `dynamo serve` (the CLI asks
// the server to run the detox:Default application) with a policy that
// deletes everything: dry run first, then for real. Every last copy is
// kept with reason "last copy" (shown by detox explain); of the two disk
// copies of /Redundant exactly one goes, and so does the copy at the
// morgue site whose other copy is usable.
func TestServeKeepsLastCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs dynamo serve")
	}
	bin := buildDynamo(t)
	dir := t.TempDir()
	port := freePortNumber(t)
	const token = "lastcopy-test-token"
	dsn := "sqlite:" + filepath.Join(dir, "dynamo.db")
	pol := filepath.Join(dir, "delete-everything.txt")
	must(t, os.WriteFile(pol, []byte(deleteEverything), 0o644))
	cfg := filepath.Join(dir, "dynamo.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`database: %s
registry:
  listen: 127.0.0.1:%s
  users: [{name: ops, roles: {"*": admin}}]
  tokens: [{user: ops, token: %s}]
scheduler: {lease_period: 5s, heartbeat: 1s}
detox:
  partitions:
    Default: {policy: %s}
`, dsn, port, token, pol)), 0o644))
	startServeArgs(t, bin, dir, "serve", "serve", "--config", cfg)
	base := "http://127.0.0.1:" + port
	waitUntil(t, "the server to be ready", 90*time.Second, func() bool {
		return apiCall("GET", base+"/readyz", "", "").code == http.StatusOK
	})
	// Writes need the writer lease, which the server takes after it is ready.
	waitUntil(t, "the inventory to be injected", 60*time.Second, func() bool {
		a := apiCall("POST", base+"/api/v1/injections/sync", token, lastCopyInventory)
		if a.code != http.StatusOK && a.code != http.StatusServiceUnavailable {
			t.Fatalf("inject: %d %s %v", a.code, a.body, a.err)
		}
		return a.code == http.StatusOK
	})
	t.Setenv(appEnvToken, token)
	waitUntil(t, "the server to hold the writer lease", 30*time.Second, func() bool {
		out, err := runCLI(t, "app", "list", "--server", base)
		return err == nil && strings.Contains(out, "writer (lease holder)")
	})

	kept := []struct{ dataset, site string }{
		{"/OnTape/R-v1/RAW", "T1_X_MSS"},
		{"/OnBuffer/R-v1/RAW", "T1_X_Buffer"},
		{"/OnUnknown/R-v1/AOD", "T3_X_Unknown"},
		{"/Partial/R-v1/AOD", "T2_A"},
		{"/MorgueOther/R-v1/AOD", "T2_A"},
	}
	explain := func(dataset, site string) string {
		out, stderr, err := runDynamo(t, "--db", dsn, "detox", "explain", "--dataset", dataset, "--site", site)
		require.NoError(t, err, stderr)
		return out
	}
	check := func(mode string) {
		for _, k := range kept {
			out := explain(k.dataset, k.site)
			require.Contains(t, out, "protect", "%s: %s at %s:\n%s", mode, k.dataset, k.site, out)
			require.Contains(t, out, "last copy", "%s: %s at %s:\n%s", mode, k.dataset, k.site, out)
		}
		out := explain("/MorgueOther/R-v1/AOD", "T2_Morgue")
		require.Contains(t, out, "delete", "%s: the morgue copy of a dataset with a usable copy may go:\n%s", mode, out)
		a, b := explain("/Redundant/R-v1/AOD", "T2_A"), explain("/Redundant/R-v1/AOD", "T2_B")
		deleted := 0
		for _, l := range strings.Split(a+b, "\n") {
			if strings.HasPrefix(l, "delete ") {
				deleted++
			}
		}
		require.Equal(t, 1, deleted, "%s: exactly one copy of /Redundant goes:\n%s\n%s", mode, a, b)
		require.Contains(t, a+b, "last copy", "%s: the other copy of /Redundant is kept", mode)
	}

	// Dry run: planned and recorded, nothing deleted.
	out, err := runCLI(t, "app", "run", "detox:Default", "--read-only", "--wait", "--server", base)
	require.NoError(t, err, out)
	check("dry run")
	d, err := db.Open(context.Background(), dsn)
	require.NoError(t, err)
	defer d.Close()
	pending := func() []string {
		var rows []string
		must(t, d.Select(&rows, `SELECT d.name || '@' || s.name FROM block_replicas r JOIN blocks b ON b.id = r.block_id
			JOIN datasets d ON d.id = b.dataset_id JOIN sites s ON s.id = r.site_id WHERE r.flags & 2 = 2 ORDER BY 1`))
		return rows
	}
	require.Empty(t, pending(), "a dry run marked replicas pending deletion")

	// For real.
	out, err = runCLI(t, "app", "run", "detox:Default", "--wait", "--server", base)
	require.NoError(t, err, out)
	check("real run")
	got := pending()
	require.Len(t, got, 2, "%v", got)
	require.Equal(t, "/MorgueOther/R-v1/AOD@T2_Morgue", got[0])
	require.True(t, strings.HasPrefix(got[1], "/Redundant/R-v1/AOD@T2_"), "%v", got)
	// The cycle history agrees: the latest cycle was applied.
	a := apiCall("GET", base+"/api/v1/detox/cycles?partition=Default&limit=1", token, "")
	require.Equal(t, http.StatusOK, a.code, a.body)
	require.Contains(t, a.body, `"status":"applied"`)

	// An operator declares the tape copy bad, through the server: it is
	// listed as suspicious; clearing the flag takes it off the list.
	out, err = runCLI(t, "fileop", "mark-bad", "/OnTape/R-v1/RAW#b1", "T1_X_MSS", "--server", base)
	require.Error(t, err, "mark-bad without --reason")
	out, err = runCLI(t, "fileop", "mark-bad", "/OnTape/R-v1/RAW#b1", "T1_X_MSS", "--reason", "tape lost in the robot", "--server", base)
	require.NoError(t, err, out)
	out, err = runCLI(t, "fileop", "replicas", "--server", base, "-o", "json")
	require.NoError(t, err, out)
	require.Contains(t, out, `"block": "/OnTape/R-v1/RAW#b1"`)
	require.Contains(t, out, `"suspicious": true`)
	require.Contains(t, out, "declared bad: tape lost in the robot")
	var flags int
	must(t, d.Get(&flags, `SELECT r.flags FROM block_replicas r JOIN sites s ON s.id = r.site_id WHERE s.name = 'T1_X_MSS'`))
	require.Equal(t, 4, flags&4, "suspicious flag not stored")
	_, err = runCLI(t, "fileop", "mark-bad", "/OnTape/R-v1/RAW#b9", "T1_X_MSS", "--reason", "x", "--server", base)
	require.ErrorContains(t, err, "block /OnTape/R-v1/RAW#b9")
	out, err = runCLI(t, "fileop", "clear-bad", "/OnTape/R-v1/RAW#b1", "T1_X_MSS", "--server", base)
	require.NoError(t, err, out)
	out, err = runCLI(t, "fileop", "replicas", "--server", base, "-o", "json")
	require.NoError(t, err, out)
	require.NotContains(t, out, "OnTape")
}
