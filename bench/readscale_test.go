package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/testdb"
)

// TestReadScaleInvariants runs the read-scaling benchmark at a tiny size
// with one and two servers on MariaDB and checks what the benchmark
// itself relies on: it measured the inventory it generated, every server
// answered reads and no read failed, the standby refused the write
// (503 not_writer), and each write on the holder became visible on the
// standby (the lag samples), which replayed no further than the holder.
func TestReadScaleInvariants(t *testing.T) {
	dsn := testdb.MySQLDSN(t) // skips without a server, fails with CI=true
	if testing.Short() {
		t.Skip("builds the binary and runs two servers")
	}
	bin := filepath.Join(t.TempDir(), "dynamo")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/dynamo").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	rep, err := ReadScale(context.Background(), ReadScaleOptions{Binary: bin, DSN: dsn, Servers: []int{1, 2}, Datasets: 40,
		Duration: 2 * time.Second, Workers: 4, LagSamples: 2, Heartbeat: 300 * time.Millisecond, Dir: t.TempDir(), Seed: 1,
		Log: logrus.NewEntry(log)})
	require.NoError(t, err)
	require.EqualValues(t, 40, rep.Datasets, "the benchmark measured another inventory than it generated")
	require.Len(t, rep.Rows, 2)
	for i, row := range rep.Rows {
		require.Equal(t, i+1, row.Servers)
		require.Positive(t, row.Requests)
		require.Zero(t, row.Errors, row.FirstError)
		require.Len(t, row.PerServer, row.Servers)
		for k, n := range row.PerServer {
			require.Positive(t, n, "server %d answered no reads", k+1)
		}
		require.Len(t, row.Seqs, row.Servers)
	}
	one, two := rep.Rows[0], rep.Rows[1]
	require.Zero(t, one.StandbyWritesRefused)
	require.Zero(t, one.LagSamples, "one server has no standby to lag")
	require.Equal(t, 1, two.StandbyWritesRefused)
	require.LessOrEqual(t, two.StandbyRefusalsNamingHolder, two.StandbyWritesRefused)
	require.Equal(t, 2, two.LagSamples)
	require.Positive(t, two.LagMax)
	require.LessOrEqual(t, two.LagP50, two.LagMax)
	require.Positive(t, two.Seqs[1], "the standby replayed nothing")
	require.LessOrEqual(t, two.Seqs[1], two.Seqs[0], "the standby is ahead of the holder")
}
