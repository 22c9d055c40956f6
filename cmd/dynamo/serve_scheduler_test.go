package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/scheduler"
)

// serveProc is one `dynamo serve` child process.
type serveProc struct {
	cmd *exec.Cmd
	log string
	id  string // its scheduler server id (hostname:pid)
}

func startServe(t *testing.T, bin, dsn, cfg, dir, name string) *serveProc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--db", dsn, "--scheduler-config", cfg, "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	host, _ := os.Hostname()
	p := &serveProc{cmd: cmd, log: logPath, id: fmt.Sprintf("%s:%d", host, cmd.Process.Pid)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", name, tail(string(b), 60))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// buildDynamo builds this binary into a temporary directory.
func buildDynamo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dynamo")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Two `dynamo serve` processes on one MariaDB database: the first holds
// the writer lease and increments a counter through a sequence; the second
// stands by without writing. kill -9 of the holder: the standby takes the
// lease within the lease period (plus its polling interval), replays the
// change log and goes on counting. The change log ends up gap-free, with
// every counter value exactly once: nothing lost, nothing applied twice.
func TestTwoServersLeaseTakeoverAfterKill9(t *testing.T) {
	dsn := testdb.MySQLDSN(t) // skips without a server, fails with CI=true
	if testing.Short() {
		t.Skip("builds the binary and runs two servers")
	}
	const (
		leasePeriod = 3 * time.Second
		heartbeat   = 500 * time.Millisecond
	)
	dir := t.TempDir()
	bin := buildDynamo(t)
	seq := filepath.Join(dir, "count.seq")
	must(t, os.WriteFile(seq, []byte("<count> = test:counter\n[SEQUENCE count]\n^ <count> --sleep 40ms\nWAIT 0.01\n"), 0o644))
	cfg := filepath.Join(dir, "scheduler.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`lease_period: %s
heartbeat: %s
grace: 2s
retry_delay: 100ms
test_apps: true
sequences: %s
`, leasePeriod, heartbeat, seq)), 0o644))

	ctx := context.Background()
	a := startServe(t, bin, dsn, cfg, dir, "A")
	// The database is migrated by A; open it once A holds the lease.
	var d *db.DB
	waitUntil(t, "A to take the lease", 60*time.Second, func() bool {
		if d == nil {
			x, err := db.Open(ctx, dsn)
			if err != nil {
				return false
			}
			d = x
		}
		l, err := scheduler.ReadLease(ctx, d)
		return err == nil && l.Holder == a.id
	})
	defer d.Close()
	b := startServe(t, bin, dsn, cfg, dir, "B")
	waitUntil(t, "B to start", 30*time.Second, func() bool {
		raw, _ := os.ReadFile(b.log)
		return strings.Contains(string(raw), "ready; stop with")
	})
	waitUntil(t, "A to count to 20", 30*time.Second, func() bool { return maxSeq(t, d) >= 20 })
	// The standby writes nothing and runs nothing.
	var byB int
	must(t, d.Get(&byB, "SELECT COUNT(*) FROM scheduler_runs WHERE server = ?", b.id))
	if byB != 0 {
		t.Fatalf("the standby ran %d applications", byB)
	}

	killed := time.Now()
	must(t, a.cmd.Process.Signal(syscall.SIGKILL))
	_ = a.cmd.Wait()
	before := maxSeq(t, d)
	var took time.Duration
	waitUntil(t, "B to take the lease", 3*leasePeriod, func() bool {
		l, err := scheduler.ReadLease(ctx, d)
		if err == nil && l.Holder == b.id {
			took = l.Acquired.Sub(killed)
			return true
		}
		return false
	})
	// A's last heartbeat was before the kill, so its lease ends at most one
	// lease period after it; B notices within one heartbeat.
	if limit := leasePeriod + heartbeat + 250*time.Millisecond; took > limit {
		t.Errorf("takeover %s after kill -9; want <= %s (lease period + heartbeat)", took, limit)
	}
	t.Logf("takeover %s after kill -9 (lease period %s, heartbeat %s); A had written up to seq %d", took, leasePeriod, heartbeat, before)
	waitUntil(t, "B to count 20 more", 30*time.Second, func() bool { return maxSeq(t, d) >= before+20 })

	// SIGTERM: B stops scheduling, finishes, releases the lease, exits 0.
	must(t, b.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("B exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("B did not exit after SIGTERM")
	}
	l, err := scheduler.ReadLease(ctx, d)
	must(t, err)
	if l.Holder != "" {
		t.Errorf("lease still held by %q after B's shutdown", l.Holder)
	}

	// The change log: seq 1..N without gaps; the counter values, in seq
	// order, are exactly 1..K.
	var rows []struct {
		Seq  int64  `db:"seq"`
		Kind string `db:"kind"`
		Body string `db:"body"`
	}
	must(t, d.Select(&rows, "SELECT seq, kind, body FROM inventory_changes ORDER BY seq"))
	k := int64(0)
	for i, r := range rows {
		if r.Seq != int64(i+1) {
			t.Fatalf("change log gap: row %d has seq %d", i, r.Seq)
		}
		if r.Kind != "upsert_dataset" {
			continue
		}
		var ds struct {
			Name       string `json:"name"`
			LastUpdate int64  `json:"last_update"`
		}
		must(t, json.Unmarshal([]byte(r.Body), &ds))
		if ds.Name != scheduler.CounterDataset {
			continue
		}
		k++
		if ds.LastUpdate != k {
			t.Fatalf("seq %d sets the counter to %d, want %d (lost or doubled update)", r.Seq, ds.LastUpdate, k)
		}
	}
	if k < 35 { // 20 by A and 20 by B, less the partition row
		t.Fatalf("only %d counter updates", k)
	}
	// The history agrees: updates recorded by successful runs add up to
	// the log, except at most the one run A committed but could not record
	// before it died (B marks it abandoned).
	var okUpdates, abandoned int64
	must(t, d.Get(&okUpdates, "SELECT COALESCE(SUM(updates), 0) FROM scheduler_runs WHERE status = 'ok'"))
	must(t, d.Get(&abandoned, "SELECT COUNT(*) FROM scheduler_runs WHERE status = 'abandoned' AND server = ?", a.id))
	if okUpdates != k && okUpdates != k-1 {
		t.Errorf("successful runs recorded %d updates; the change log has %d", okUpdates, k)
	}
	if abandoned > 1 {
		t.Errorf("%d runs of A abandoned; at most one can have been running", abandoned)
	}
	var bad int
	must(t, d.Get(&bad, "SELECT COUNT(*) FROM scheduler_runs WHERE status IN ('running', 'queued')"))
	if bad != 0 {
		t.Errorf("%d runs left running or queued after both servers stopped", bad)
	}
	t.Logf("%d counter updates, %d by runs of A and B recorded ok, %d abandoned", k, okUpdates, abandoned)
}

func maxSeq(t *testing.T, d *db.DB) int64 {
	t.Helper()
	var n int64
	if err := d.Get(&n, "SELECT COALESCE(MAX(seq), 0) FROM inventory_changes"); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
