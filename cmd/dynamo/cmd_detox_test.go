package main

import (
	"bytes"
	"context"
	"encoding/json"
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
