package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
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
	bin := buildDynamo(t)
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
		require.Len(t, row.ServerCPU, row.Servers)
		require.Len(t, row.ServerCores, row.Servers)
		require.Positive(t, row.ServerCPUPerRead, "the servers' CPU was not measured")
		require.Positive(t, row.GeneratorCPUPerRead, "the generator's CPU was not measured")
		require.Empty(t, row.Throttled, "no quota, no throttling figures")
		require.False(t, row.ServerBound, "without a quota a row cannot claim per-server capacity")
	}
	one, two := rep.Rows[0], rep.Rows[1]
	require.Zero(t, one.StandbyWritesRefused)
	require.Zero(t, one.LagSamples, "one server has no standby to lag")
	require.Equal(t, 1, two.StandbyWritesRefused)
	require.LessOrEqual(t, two.StandbyRefusalsNamingHolder, two.StandbyWritesRefused)
	require.Equal(t, 2, two.LagSamples)
	require.Positive(t, two.LagMax)
	require.LessOrEqual(t, two.LagP50, two.LagP99)
	require.LessOrEqual(t, two.LagP99, two.LagMax)
	require.Positive(t, two.Seqs[1], "the standby replayed nothing")
	require.LessOrEqual(t, two.Seqs[1], two.Seqs[0], "the standby is ahead of the holder")
}

var (
	buildOnce sync.Once
	buildDir  string // removed by TestMain
	buildBin  string
	buildErr  error
)

// buildDynamo builds the binary the servers run, once per test binary.
func buildDynamo(t *testing.T) string {
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "dynamo-readscale-bin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "dynamo")
		if out, err := exec.Command("go", "build", "-o", buildBin, "../cmd/dynamo").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return buildBin
}

// TestReadScaleCPUQuota runs one server capped at 5 % of a core with four
// closed-loop readers, which want far more: the kernel must have stopped
// it for using up its quota (the cap is real), the row reports the
// throttling, and the benchmark leaves no cgroup behind and its own
// process back where it was.
func TestReadScaleCPUQuota(t *testing.T) {
	dsn := testdb.MySQLDSN(t)
	if testing.Short() {
		t.Skip("builds the binary and runs a server")
	}
	if _, _, err := cpuCgroupRoot(); err != nil {
		t.Skipf("no cpu cgroup here: %v", err)
	}
	probe := fmt.Sprintf("dynamo-readscale-probe-%d", os.Getpid())
	if g, err := newCPUCgroup(probe, 0, os.Getpid()); err != nil {
		t.Skipf("cannot create a cpu cgroup (needs root): %v", err)
	} else {
		g.leave(os.Getpid())
	}
	cgBefore, err := os.ReadFile("/proc/self/cgroup")
	require.NoError(t, err)
	bin := buildDynamo(t)
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	rep, err := ReadScale(context.Background(), ReadScaleOptions{Binary: bin, DSN: dsn, Servers: []int{1}, Datasets: 40,
		Duration: 2 * time.Second, Workers: 4, Heartbeat: 300 * time.Millisecond, Dir: t.TempDir(), Seed: 1,
		CPUQuota: 0.05, Log: logrus.NewEntry(log)})
	require.NoError(t, err)
	require.Equal(t, 0.05, rep.CPUQuota)
	require.Equal(t, 1, rep.ServerProcs, "GOMAXPROCS defaults to the quota rounded up")
	require.Len(t, rep.Rows, 1)
	row := rep.Rows[0]
	require.Zero(t, row.Errors, row.FirstError)
	require.Len(t, row.Throttled, 1)
	require.Positive(t, row.Throttled[0], "a capped server with four readers was never stopped by its quota")

	cgAfter, err := os.ReadFile("/proc/self/cgroup")
	require.NoError(t, err)
	require.Equal(t, string(cgBefore), string(cgAfter), "the benchmark left its process in its cgroup")
	root, _, err := cpuCgroupRoot()
	require.NoError(t, err)
	left, err := filepath.Glob(filepath.Join(root, fmt.Sprintf("dynamo-readscale-%d-*", os.Getpid())))
	require.NoError(t, err)
	require.Empty(t, left, "cgroups left behind")
}
