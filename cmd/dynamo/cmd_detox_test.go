package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/db"
)

// runDynamo runs the CLI in-process and returns stdout, stderr and the error.
func runDynamo(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestDetoxCheck(t *testing.T) {
	dir := "../../detox/testdata/policies"
	parts := filepath.Join(dir, "partitions.txt")
	for _, tc := range []struct {
		file      string
		partition string
		want      []string // substrings of stderr; none: valid
	}{
		{file: "physics-default.txt"},
		{file: "cache.txt"},
		{file: "campaign.txt", partition: "Ops"},
		{file: "campaign.txt", want: []string{"campaign.txt: "}},
		{file: "bad-variable.txt", want: []string{"bad-variable.txt:5:9: unknown variable", "dataset.popularity"}},
		{file: "bad-nodefault.txt", want: []string{"bad-nodefault.txt: missing default decision"}},
		{file: "bad-partition.txt", want: []string{"bad-partition.txt:1:", "Nowhere"}},
		{file: "bad-syntax.txt", want: []string{"bad-syntax.txt:3:22:", "bad-syntax.txt:5:40: invalid time expression"}},
	} {
		t.Run(tc.file+tc.partition, func(t *testing.T) {
			args := []string{"detox", "check", "--policy", filepath.Join(dir, tc.file), "--partitions", parts}
			if tc.partition != "" {
				args = append(args, "--partition", tc.partition)
			}
			out, stderr, err := runDynamo(t, args...)
			if len(tc.want) == 0 {
				require.NoError(t, err, stderr)
				require.Equal(t, "ok\n", out)
				return
			}
			require.Error(t, err)
			require.Equal(t, 1, exitCode(err))
			for _, w := range tc.want {
				require.Contains(t, stderr, w)
			}
		})
	}
	_, _, err := runDynamo(t, "detox", "check")
	require.Equal(t, 2, exitCode(err))
}

func TestDetoxRunExplainAccess(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "d.db")
	_, stderr, err := runDynamo(t, "--db", dsn, "inventory", "inject", "testdata/detox_inventory.json")
	require.NoError(t, err, stderr)

	_, stderr, err = runDynamo(t, "--db", dsn, "access", "record", "--dataset", "/Big/R-v1/AOD", "--site", "T2_A", "--count", "3", "--at", "2026-11-01T10:00:00Z")
	require.NoError(t, err, stderr)
	_, _, err = runDynamo(t, "--db", dsn, "access", "record", "--dataset", "nope", "--site", "T2_A")
	require.Equal(t, 2, exitCode(err))

	out, stderr, err := runDynamo(t, "--db", dsn, "detox", "run", "--partition", "Default", "--policy", "testdata/detox_policy.txt", "--dry-run", "--list")
	require.NoError(t, err, stderr)
	require.Contains(t, out, "dry run")
	require.Contains(t, out, "delete T2_A /Big/R-v1/AOD#b1 700 bytes")
	require.NotContains(t, out, "delete T2_A /Small")

	out, stderr, err = runDynamo(t, "--db", dsn, "detox", "run", "--partition", "Default", "--policy", "testdata/detox_policy.txt", "--dry-run", "--json")
	require.NoError(t, err, stderr)
	var js map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &js))
	require.Equal(t, float64(700), js["deleted_bytes"])

	out, stderr, err = runDynamo(t, "--db", dsn, "detox", "explain", "--dataset", "/Small/R-v1/AOD", "--site", "T2_A")
	require.NoError(t, err, stderr)
	require.Contains(t, out, "protect")
	require.Contains(t, out, "Protect dataset.name == /Small/*/*")
	out, stderr, err = runDynamo(t, "--db", dsn, "detox", "explain", "--dataset", "/Big/R-v1/AOD", "--site", "T2_A", "--policy", "testdata/detox_policy.txt", "--partition", "Default")
	require.NoError(t, err, stderr)
	require.True(t, strings.Contains(out, "delete") && strings.Contains(out, "Dismiss (default)"), out)

	// A real cycle: the replica goes pending deletion and its files are
	// queued with the file-operation daemon (wired in wire.go).
	out, stderr, err = runDynamo(t, "--db", dsn, "detox", "run", "--partition", "Default", "--policy", "testdata/detox_policy.txt")
	require.NoError(t, err, stderr)
	require.Contains(t, out, "applied: 1 block replicas (700 B) pending deletion")
	out, stderr, err = runDynamo(t, "--db", dsn, "detox", "run", "--partition", "Default", "--policy", "testdata/detox_policy.txt", "--dry-run", "--json")
	require.NoError(t, err, stderr)
	require.NoError(t, json.Unmarshal([]byte(out), &js))
	require.Equal(t, float64(0), js["deleted_bytes"]) // T2_A is at 30 % now
	d, err := db.Open(context.Background(), dsn)
	require.NoError(t, err)
	defer d.Close()
	var queued, pending int
	require.NoError(t, d.Get(&queued, "SELECT COUNT(*) FROM fileop_subscriptions WHERE op = 'deletion'"))
	require.NoError(t, d.Get(&pending, "SELECT COUNT(*) FROM block_replicas WHERE flags & 2 = 2"))
	require.Positive(t, queued, "no file deletions queued")
	require.Positive(t, pending, "no replica marked pending deletion")
}

// A tape campaign through the CLI: without the partition's opt-in the sole
// tape copy is kept (last copy); with it (and its cap) the dry run prints
// the deletion marked LAST COPY even without --list, and --json lists it.
func TestDetoxRunLastCopyOptIn(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "d.db")
	_, stderr, err := runDynamo(t, "--db", dsn, "inventory", "inject", "testdata/lastcopy_tape.json")
	require.NoError(t, err, stderr)
	run := func(cfg string, extra ...string) string {
		file := filepath.Join(dir, "detox.yaml")
		require.NoError(t, os.WriteFile(file, []byte(cfg), 0o644))
		args := append([]string{"--db", dsn, "detox", "run", "--partition", "Default", "--policy", "testdata/lastcopy_tape_policy.txt",
			"--detox-config", file, "--dry-run"}, extra...)
		out, stderr, err := runDynamo(t, args...)
		require.NoError(t, err, stderr)
		return out
	}
	out := run("partitions: {Default: {policy: x}}\n", "--list")
	require.Contains(t, out, "delete T1_X_MSS /OnDisk/RunIISummer15GS-v1/GEN-SIM#b1")
	require.NotContains(t, out, "/Retired/")
	out, stderr, err = runDynamo(t, "--db", dsn, "detox", "explain", "--dataset", "/Retired/RunIISummer15GS-v1/GEN-SIM", "--site", "T1_X_MSS")
	require.NoError(t, err, stderr)
	require.Contains(t, out, "last copy")

	optIn := "partitions: {Default: {policy: x, allow_last_copy_deletion: true, max_last_copy_replicas: 10}}\n"
	out = run(optIn)
	require.Contains(t, out, "delete LAST COPY T1_X_MSS /Retired/RunIISummer15GS-v1/GEN-SIM#b1 100 bytes")
	require.NotContains(t, out, "/OnDisk/", "without --list only LAST COPY deletions are printed")
	out = run(optIn, "--json")
	var js struct {
		LastCopies []map[string]any `json:"last_copy_deletions"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &js))
	require.Len(t, js.LastCopies, 1)
	require.Equal(t, "/Retired/RunIISummer15GS-v1/GEN-SIM#b1", js.LastCopies[0]["block"])
	out, stderr, err = runDynamo(t, "--db", dsn, "detox", "explain", "--dataset", "/Retired/RunIISummer15GS-v1/GEN-SIM", "--site", "T1_X_MSS")
	require.NoError(t, err, stderr)
	require.Contains(t, out, "LAST COPY")

	_, _, err = runDynamo(t, "--db", dsn, "detox", "run", "--partition", "Default", "--policy", "testdata/lastcopy_tape_policy.txt",
		"--detox-config", writeFile(t, dir, "nocap.yaml", "partitions: {Default: {policy: x, allow_last_copy_deletion: true}}\n"), "--dry-run")
	require.ErrorContains(t, err, "needs a cap")
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// detox diff plans one policy under the two copy-count scopes on one
// snapshot: T2_B holds the other copies but is no target, so the
// partition's view counts one copy and protects both replicas, the
// inventory counts two and deletes /Big (then Until holds and /Small is
// kept). Two different policy files compare the same way.
func TestDetoxDiff(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "d.db")
	_, stderr, err := runDynamo(t, "--db", dsn, "inventory", "inject", "testdata/detox_inventory.json")
	require.NoError(t, err, stderr)
	base := []string{"--db", dsn, "detox", "diff", "--partition", "Default", "--policy", "testdata/detox_copycount_policy.txt"}

	out, stderr, err := runDynamo(t, append(base, "--copy-counts-a", "partition", "--copy-counts-b", "inventory")...)
	require.NoError(t, err, stderr)
	require.Contains(t, out, "T2_A: B frees 700 bytes, keeps 0 bytes that A deletes")
	require.Regexp(t, `/Big/R-v1/AOD\s+all\s+700\s+protect line 5 "Protect dataset.num_full_disk_copy < 2" \(policy line\)\s+delete line 0`, out)
	require.Regexp(t, `/Small/R-v1/AOD\s+all\s+300\s+protect line 5 .*keep line 0`, out)
	require.NotContains(t, out, "T2_B")

	out, stderr, err = runDynamo(t, append(base, "--copy-counts-a", "inventory", "--copy-counts-b", "partition", "--json")...)
	require.NoError(t, err, stderr)
	var js struct {
		Sites []struct {
			Site  string `json:"site"`
			Freed int64  `json:"freed_bytes"`
			Kept  int64  `json:"kept_bytes"`
		} `json:"sites"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &js))
	require.Len(t, js.Sites, 1)
	require.Equal(t, "T2_A", js.Sites[0].Site)
	require.Equal(t, int64(700), js.Sites[0].Kept)
	require.Zero(t, js.Sites[0].Freed)

	out, stderr, err = runDynamo(t, append(base, "--against", "testdata/detox_policy.txt", "--copy-counts-a", "partition")...)
	require.NoError(t, err, stderr)
	require.Regexp(t, `/Big/R-v1/AOD\s+all\s+700\s+protect line 5 .*delete line 0`, out)
	require.Regexp(t, `/Small/R-v1/AOD\s+all\s+300\s+protect line 5 .*protect line 5 "Protect dataset.name == /Small/\*/\*"`, out)

	out, stderr, err = runDynamo(t, base...)
	require.NoError(t, err, stderr)
	require.Contains(t, out, "no decision changes")

	_, _, err = runDynamo(t, append(base, "--copy-counts-b", "site")...)
	require.Equal(t, 2, exitCode(err))
}
