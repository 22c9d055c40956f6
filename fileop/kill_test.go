package fileop_test

import (
	"context"
	"fmt"
	"hash/adler32"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/fileop/fileoptest"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// TestKill9MidBatchResumes builds the dynamo binary, runs `dynamo serve`
// (the fileop component, native backend) on a file:// federation, kills it
// with SIGKILL while batches are in flight, restarts it, and checks that
// every file arrived exactly once: one done subscription and one done
// history row per file, destination files byte-identical with the right
// adler32, and the reloaded inventory showing the replica complete.
func TestKill9MidBatchResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(dir, "dynamo")
	build := exec.Command("go", "build", "-o", bin, "../cmd/dynamo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dsn := "sqlite:" + filepath.Join(dir, "dynamo.db")
	d, err := db.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	store, err := inventory.Load(ctx, d, testLog(t), nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	const nfiles = 240
	fed, err := fileoptest.Setup(ctx, store, filepath.Join(dir, "fed"), nfiles, 256<<10, 3, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fed.QueueCopy(ctx, t0, 0); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "fileop.yaml")
	if err := os.WriteFile(cfg, []byte("interval: 50ms\nbatch_size: 20\nmax_pending: 60\ncommit_batch: 5\nnative:\n  workers: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--db", dsn, "--fileop-config", cfg, "--log-level", "warn", "--listen", freeAddr(t))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	count := func(q string) int {
		var n int
		if err := d.Get(&n, q); err != nil {
			t.Fatal(err)
		}
		return n
	}
	doneQ := "SELECT COUNT(*) FROM fileop_subscriptions WHERE state = 'done'"
	inbatchQ := "SELECT COUNT(*) FROM fileop_subscriptions WHERE state = 'inbatch'"

	p := start()
	deadline := time.Now().Add(60 * time.Second)
	for count(doneQ) < nfiles/4 {
		if time.Now().After(deadline) {
			p.Process.Kill()
			t.Fatalf("only %d done after 60s", count(doneQ))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.Wait()
	doneAtKill, inflight := count(doneQ), count(inbatchQ)
	t.Logf("killed with %d done, %d in flight", doneAtKill, inflight)
	if inflight == 0 || doneAtKill >= nfiles {
		t.Fatalf("kill did not land mid-batch (%d done, %d in flight)", doneAtKill, inflight)
	}
	// The kill may have cut copies short, leaving their temporary uploads;
	// make sure one exists, as an interrupted copy of an in-flight file
	// leaves it (its directory, an old mtime), so the restart has to
	// remove it.
	var lfn string
	if err := d.Get(&lfn, "SELECT lfn FROM fileop_subscriptions WHERE state = 'inbatch' LIMIT 1"); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(fed.DstDir, filepath.Dir(lfn), ".dynamo-tmp.interrupted")
	if err := os.MkdirAll(filepath.Dir(planted), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planted, []byte("half a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(planted, old, old); err != nil {
		t.Fatal(err)
	}
	t.Logf("temporary uploads after the kill: %v", tempFiles(t, fed.DstDir))

	p = start()
	deadline = time.Now().Add(120 * time.Second)
	for count(doneQ) < nfiles {
		if time.Now().After(deadline) {
			p.Process.Kill()
			t.Fatalf("only %d of %d done after restart", count(doneQ), nfiles)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = p.Process.Signal(syscall.SIGTERM)
	_ = p.Wait()
	if left := tempFiles(t, fed.DstDir); len(left) > 0 {
		t.Fatalf("temporary uploads of interrupted transfers left after the restart: %v", left)
	}

	if n := count("SELECT COUNT(*) FROM fileop_subscriptions WHERE live = 1"); n != 0 {
		t.Fatalf("%d subscriptions still live", n)
	}
	if n := count("SELECT COUNT(*) FROM (SELECT file_id FROM fileop_history WHERE outcome = 'done' GROUP BY file_id HAVING COUNT(*) <> 1) x"); n != 0 {
		t.Fatalf("%d files completed more than once", n)
	}
	// Work finished just before the kill but not recorded is found at the
	// destination on restart and not copied again.
	t.Logf("after restart: %d found already present, %d streamed",
		count("SELECT COUNT(*) FROM fileop_history WHERE mode = 'present'"), count("SELECT COUNT(*) FROM fileop_history WHERE mode = 'stream'"))
	if n := count("SELECT COUNT(DISTINCT file_id) FROM fileop_history WHERE outcome = 'done'"); n != nfiles {
		t.Fatalf("%d files completed, want %d", n, nfiles)
	}
	for _, f := range fed.Files {
		b, err := os.ReadFile(filepath.Join(fed.DstDir, f.LFN))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%08x", adler32.Checksum(b)); got != f.Adler32 || int64(len(b)) != f.Size {
			t.Fatalf("%s: adler32 %s size %d, want %s %d", f.LFN, got, len(b), f.Adler32, f.Size)
		}
	}
	// The CLI reads the same database.
	out, err := exec.Command(bin, "fileop", "status", "--db", dsn, "--log-level", "warn").Output()
	if err != nil || !strings.Contains(string(out), "transfer  done") || !strings.Contains(string(out), " 240 ") {
		t.Fatalf("dynamo fileop status: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "fileop", "release", "--all", "--db", dsn, "--log-level", "warn").Output(); err != nil || strings.TrimSpace(string(out)) != "released 0" {
		t.Fatalf("dynamo fileop release --all: %v %q", err, out)
	}
	fresh, err := inventory.Load(ctx, d, testLog(t), nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	rep, ok := fresh.Snapshot().BlockReplica(fed.Block, fed.Dst.ID)
	if !ok || !rep.Complete || rep.NumFiles != nfiles {
		t.Fatalf("reloaded destination replica %+v (exists %v), want complete", rep, ok)
	}
	if n := count("SELECT COUNT(*) FROM block_replica_files"); n != 0 {
		t.Fatalf("%d replica file rows left for a complete replica", n)
	}
}

// tempFiles lists the drivers' temporary uploads below dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), ".dynamo-tmp.") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// freeAddr returns a loopback address with a port free right now (the
// serve process's REST listener must not collide with anything).
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
