package main

import (
	"context"
	"fmt"
	"hash/adler32"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/net/webdav"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/scheduler"
)

// countingDAV is the destination storage of the kill trials: a WebDAV
// server in the test process (it outlives every dynamo server) that counts
// completed PUTs and DELETEs per path, answers HEAD with an adler32 Digest
// (so a resumed transfer can verify in place) and makes each operation
// take a while, so that kills land with work in flight.
type countingDAV struct {
	h     http.Handler
	dir   string
	delay time.Duration
	mu    sync.Mutex
	puts  map[string]int
	dels  map[string]int
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(c int) { w.code = c; w.ResponseWriter.WriteHeader(c) }

func (d *countingDAV) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPut, http.MethodDelete:
		time.Sleep(d.delay) // a slow storage element
	case http.MethodHead:
		if strings.Contains(strings.ToLower(r.Header.Get("Want-Digest")), "adler32") {
			if b, err := os.ReadFile(filepath.Join(d.dir, filepath.FromSlash(r.URL.Path))); err == nil {
				w.Header().Set("Digest", fmt.Sprintf("adler32=%08x", adler32.Checksum(b)))
			}
		}
	}
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	d.h.ServeHTTP(sw, r)
	if sw.code/100 != 2 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		d.puts[r.URL.Path]++
	case http.MethodDelete:
		d.dels[r.URL.Path]++
	}
}

// killFed is the federation of the trials: T2_SRC (file://) holds blocks A
// and B; T2_DST (the counting WebDAV server) holds B. Queued: A copied to
// T2_DST, B deleted at T2_DST.
type killFed struct {
	srcDir, dstDir string
	a, b           []inventory.File
	dav            *countingDAV
	url            string
}

func writeTestFile(path string, size int, rng *rand.Rand) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return fmt.Sprintf("%08x", adler32.Checksum(b)), os.WriteFile(path, b, 0o644)
}

func setupKillFed(t *testing.T, dsn, dir string, nCopy, nDelete int, delay time.Duration) *killFed {
	t.Helper()
	ctx := context.Background()
	f := &killFed{srcDir: filepath.Join(dir, "src"), dstDir: filepath.Join(dir, "dst")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	f.dav = &countingDAV{dir: f.dstDir, delay: delay, puts: map[string]int{}, dels: map[string]int{},
		h: &webdav.Handler{FileSystem: webdav.Dir(f.dstDir), LockSystem: webdav.NewMemLS()}}
	srv := &http.Server{Handler: f.dav}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	f.url = "http://" + ln.Addr().String()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 15))
	mk := func(block string, n int, atDst bool) []inventory.File {
		var fs []inventory.File
		for i := 0; i < n; i++ {
			lfn := fmt.Sprintf("/store/kill/%s/f%04d.root", block, i)
			size := 1024 + rng.IntN(16<<10)
			sum, err := writeTestFile(filepath.Join(f.srcDir, lfn), size, rng)
			must(t, err)
			if atDst {
				b, err := os.ReadFile(filepath.Join(f.srcDir, lfn))
				must(t, err)
				must(t, os.MkdirAll(filepath.Dir(filepath.Join(f.dstDir, lfn)), 0o755))
				must(t, os.WriteFile(filepath.Join(f.dstDir, lfn), b, 0o644))
			}
			fs = append(fs, inventory.File{LFN: lfn, Size: int64(size), Adler32: sum})
		}
		return fs
	}
	f.a, f.b = mk("A", nCopy, false), mk("B", nDelete, true)

	// The operator's setup, before any server runs: this process owns the
	// database alone, so it writes the store directly.
	d, err := db.Open(ctx, dsn)
	must(t, err)
	defer d.Close()
	_, err = d.Migrate(ctx)
	must(t, err)
	st, err := inventory.Load(ctx, d, logging.Discard(), nil, time.Now())
	must(t, err)
	sum := func(fs []inventory.File) (n int64) {
		for _, x := range fs {
			n += x.Size
		}
		return n
	}
	var src, dst inventory.Site
	var ba, bb inventory.Block
	_, err = st.Write(ctx, time.Now(), func(t *inventory.Txn) error {
		src = inventory.Site{ID: t.NewSiteID(), Name: "T2_SRC", StorageType: inventory.StorageDisk, Status: inventory.SiteReady, Backend: "file://" + f.srcDir}
		dst = inventory.Site{ID: t.NewSiteID(), Name: "T2_DST", StorageType: inventory.StorageDisk, Status: inventory.SiteReady, Backend: f.url}
		g := inventory.Group{ID: t.NewGroupID(), Name: "Ops"}
		ds := inventory.Dataset{ID: t.NewDatasetID(), Name: "/Kill/Trials-v1/RAW", Status: inventory.DatasetValid, DataType: inventory.DataMC}
		ba = inventory.Block{ID: t.NewBlockID(), Dataset: ds.ID, Name: "A", Size: sum(f.a), NumFiles: int32(len(f.a))}
		bb = inventory.Block{ID: t.NewBlockID(), Dataset: ds.ID, Name: "B", Size: sum(f.b), NumFiles: int32(len(f.b))}
		for i := range f.a {
			f.a[i].ID, f.a[i].Block = t.NewFileID(), ba.ID
		}
		for i := range f.b {
			f.b[i].ID, f.b[i].Block = t.NewFileID(), bb.ID
		}
		ups := []inventory.Update{inventory.UpsertSite{Site: src}, inventory.UpsertSite{Site: dst}, inventory.UpsertGroup{Group: g},
			inventory.UpsertDataset{Dataset: ds}, inventory.UpsertBlock{Block: ba}, inventory.UpsertBlock{Block: bb},
			inventory.UpsertFiles{Block: ba.ID, Files: f.a}, inventory.UpsertFiles{Block: bb.ID, Files: f.b}}
		for _, s := range []inventory.SiteID{src.ID, dst.ID} {
			ups = append(ups, inventory.UpsertDatasetReplica{DatasetReplica: inventory.DatasetReplica{Dataset: ds.ID, Site: s, Group: g.ID}})
		}
		ups = append(ups,
			inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: ba.ID, Site: src.ID, Group: g.ID, Complete: true, Size: ba.Size, NumFiles: ba.NumFiles}},
			inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: bb.ID, Site: src.ID, Group: g.ID, Complete: true, Size: bb.Size, NumFiles: bb.NumFiles}},
			inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: bb.ID, Site: dst.ID, Group: g.ID, Complete: true, Size: bb.Size, NumFiles: bb.NumFiles}},
			inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: ba.ID, Site: dst.ID, Group: g.ID}})
		return t.Add(ups...)
	})
	must(t, err)
	_, err = st.Write(ctx, time.Now(), func(t *inventory.Txn) error {
		if _, err := fileop.QueueTransfers(ctx, st, t, []fileop.ReplicaRef{{Block: ba.ID, Site: dst.ID}}, 0); err != nil {
			return err
		}
		_, err := fileop.QueueDeletions(ctx, st, t, []fileop.ReplicaRef{{Block: bb.ID, Site: dst.ID}}, 0)
		return err
	})
	must(t, err)
	return f
}

// subStates counts the file-operation subscriptions by state.
func subStates(t *testing.T, d *db.DB) map[string]int {
	t.Helper()
	var rows []struct {
		State string `db:"state"`
		N     int    `db:"n"`
	}
	must(t, d.Select(&rows, "SELECT state, COUNT(*) AS n FROM "+fileop.TableSubscriptions+" GROUP BY state"))
	out := map[string]int{}
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out
}

func inBatchIDs(t *testing.T, d *db.DB) []int64 {
	t.Helper()
	var ids []int64
	must(t, d.Select(&ids, "SELECT id FROM "+fileop.TableSubscriptions+" WHERE state = ?", fileop.StateInBatch))
	return ids
}

// stillInBatch reports how many of ids are still inbatch.
func stillInBatch(t *testing.T, d *db.DB, ids []int64) int {
	t.Helper()
	if len(ids) == 0 {
		return 0
	}
	q, args, err := sqlx.In("SELECT COUNT(*) FROM "+fileop.TableSubscriptions+" WHERE state = ? AND id IN (?)", fileop.StateInBatch, ids)
	must(t, err)
	var n int
	must(t, d.Get(&n, d.Rebind(q), args...))
	return n
}

// killTrialsConfig writes the servers' configuration: a short lease, a
// slow-ish daemon (few workers, small batches) so that kills find work in
// flight.
func killTrialsConfig(t *testing.T, dir, dsn string, lease, heartbeat time.Duration) string {
	t.Helper()
	cfg := filepath.Join(dir, "dynamo.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`database: %s
registry: {inject_interval: "0"}
scheduler: {lease_period: %s, heartbeat: %s, grace: 2s}
fileop:
  backend: native
  interval: 100ms
  batch_size: 8
  retry_base: 200ms
  retry_max: 1s
  native: {workers: 3}
`, dsn, lease, heartbeat)), 0o644))
	return cfg
}

func startKillServe(t *testing.T, bin, cfg, dir, name string) *serveProc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	must(t, err)
	cmd := exec.Command(bin, "--config", cfg, "--log-level", "debug", "serve", "--listen", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = lf, lf
	must(t, cmd.Start())
	lf.Close()
	host, _ := os.Hostname()
	p := &serveProc{cmd: cmd, log: logPath, id: fmt.Sprintf("%s:%d", host, cmd.Process.Pid)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return p
}

// killTrialCount is the number of kill -9 trials: 10 in the normal suite,
// more with DYNAMO_KILL_TRIALS=N.
func killTrialCount(t *testing.T) int {
	if v := os.Getenv("DYNAMO_KILL_TRIALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("DYNAMO_KILL_TRIALS=%q", v)
		}
		return n
	}
	return 10
}

// Two servers on MariaDB with a few hundred transfers and deletions in
// flight; the holder is killed (-9) at random moments, ten times by
// default (DYNAMO_KILL_TRIALS=N for more), and restarted as the new
// standby. The survivor takes over within the lease period and resumes
// the killed holder's batches at once; in the end every operation is
// done, each file was copied exactly once (counted at the destination
// storage), and the inventory matches the disks (size and adler32).
func TestKillTheHolderTrialsMariaDB(t *testing.T) {
	dsn := testdb.MySQLDSN(t)
	if testing.Short() {
		t.Skip("builds the binary and runs two servers")
	}
	runKillTrials(t, dsn, 2)
}

// The same on SQLite with one server: kill -9 at random moments, restart.
func TestKillTheServerTrialsSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a server")
	}
	runKillTrials(t, "sqlite:"+filepath.Join(t.TempDir(), "dynamo.db"), 1)
}

func runKillTrials(t *testing.T, dsn string, servers int) {
	const (
		lease     = 2 * time.Second
		heartbeat = 300 * time.Millisecond
		nCopy     = 200
		nDelete   = 100
		opDelay   = 150 * time.Millisecond
	)
	ctx := context.Background()
	trials := killTrialCount(t)
	bin := buildDynamo(t)
	dir := t.TempDir()
	fed := setupKillFed(t, dsn, dir, nCopy, nDelete, opDelay)
	cfg := killTrialsConfig(t, dir, dsn, lease, heartbeat)
	d, err := db.Open(ctx, dsn)
	must(t, err)
	defer d.Close()

	procs := map[string]*serveProc{}
	n := 0
	start := func() {
		n++
		p := startKillServe(t, bin, cfg, dir, fmt.Sprintf("serve%d", n))
		procs[p.id] = p
	}
	for i := 0; i < servers; i++ {
		start()
	}
	holder := func() string {
		l, err := scheduler.ReadLease(ctx, d)
		if err != nil || !l.Live(time.Now()) {
			return ""
		}
		if _, ok := procs[l.Holder]; !ok {
			return ""
		}
		return l.Holder
	}
	waitUntil(t, "a server to hold the writer lease", 60*time.Second, func() bool { return holder() != "" })

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 51))
	var takeovers, resumes []time.Duration
	inFlightKills := 0
	for trial := 0; trial < trials; trial++ {
		// A random moment while the holder works.
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		victim := holder()
		if victim == "" {
			waitUntil(t, "a holder", 3*lease, func() bool { victim = holder(); return victim != "" })
		}
		before := inBatchIDs(t, d)
		if len(before) > 0 {
			inFlightKills++
		}
		p := procs[victim]
		killed := time.Now()
		must(t, p.cmd.Process.Signal(syscall.SIGKILL))
		_ = p.cmd.Wait()
		delete(procs, victim)
		if servers == 1 {
			start() // the restart is the only way back
		}
		var took time.Duration
		waitUntil(t, "the takeover", 3*lease+time.Minute, func() bool {
			l, err := scheduler.ReadLease(ctx, d)
			if err == nil && l.Holder != victim && l.Holder != "" && l.Acquired.After(killed) {
				took = l.Acquired.Sub(killed)
				return true
			}
			return false
		})
		takeovers = append(takeovers, took)
		// The killed holder's batches must not wait for anything but the
		// takeover: the new holder's daemon resumes them at once.
		if len(before) > 0 {
			limit := lease + heartbeat
			var resumed time.Duration
			waitUntil(t, "the killed holder's batches to move", limit+time.Minute, func() bool {
				if stillInBatch(t, d, before) < len(before) {
					resumed = time.Since(killed)
					return true
				}
				return false
			})
			resumes = append(resumes, resumed)
			// Ordering, not a stopwatch: the batches move only after the
			// takeover, and the wait above bounds how long that may take.
			if resumed < took {
				t.Errorf("trial %d: the killed holder's batches moved %s after the kill, before the takeover (%s)", trial, resumed, took)
			}
		}
		if servers > 1 {
			start() // the killed one comes back as the standby
		}
	}
	waitUntil(t, "every operation to finish", 120*time.Second, func() bool {
		s := subStates(t, d)
		return s[string(fileop.StateDone)] == nCopy+nDelete
	})
	if s := subStates(t, d); len(s) != 1 {
		t.Errorf("subscriptions by state at the end: %v", s)
	}
	var open int
	must(t, d.Get(&open, "SELECT COUNT(*) FROM "+fileop.TableSubscriptions+" WHERE state = ?", fileop.StateInBatch))
	if open != 0 {
		t.Errorf("%d subscriptions still inbatch", open)
	}
	for id, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		_ = p.cmd.Wait()
		delete(procs, id)
	}

	// Copies, counted at the destination: each file of A exactly once.
	fed.dav.mu.Lock()
	dups := 0
	for _, f := range fed.a {
		switch c := fed.dav.puts[f.LFN]; {
		case c == 0:
			t.Errorf("%s never copied", f.LFN)
		case c > 1:
			dups += c - 1
			t.Errorf("%s copied %d times", f.LFN, c)
		}
	}
	if len(fed.dav.puts) != len(fed.a) {
		t.Errorf("%d paths written at the destination, want %d", len(fed.dav.puts), len(fed.a))
	}
	fed.dav.mu.Unlock()

	// The inventory, freshly loaded, matches the disks.
	st, err := inventory.Load(ctx, d, logging.Discard(), nil, time.Now())
	must(t, err)
	snap := st.Snapshot()
	dst, _ := snap.SiteByName("T2_DST")
	for _, f := range fed.a {
		b, err := os.ReadFile(filepath.Join(fed.dstDir, f.LFN))
		if err != nil {
			t.Errorf("%s missing at the destination: %v", f.LFN, err)
			continue
		}
		if int64(len(b)) != f.Size || fmt.Sprintf("%08x", adler32.Checksum(b)) != f.Adler32 {
			t.Errorf("%s at the destination: %d bytes, adler32 %08x; the inventory says %d, %s", f.LFN, len(b), adler32.Checksum(b), f.Size, f.Adler32)
		}
	}
	for _, f := range fed.b {
		if _, err := os.Stat(filepath.Join(fed.dstDir, f.LFN)); err == nil {
			t.Errorf("%s still at the destination after its deletion", f.LFN)
		}
	}
	ba, _ := snap.BlockByName("/Kill/Trials-v1/RAW#A")
	bb, _ := snap.BlockByName("/Kill/Trials-v1/RAW#B")
	replicaAt := func(b inventory.BlockID) (inventory.BlockReplica, bool) {
		for r := range snap.BlockReplicas(b) {
			if r.Site == dst.ID {
				return r, true
			}
		}
		return inventory.BlockReplica{}, false
	}
	if r, ok := replicaAt(ba.ID); !ok || !r.Complete || r.Size != ba.Size {
		t.Errorf("block A at T2_DST in the inventory: %+v (present %v); want complete, %d bytes", r, ok, ba.Size)
	}
	if r, ok := replicaAt(bb.ID); ok {
		t.Errorf("block B still at T2_DST in the inventory: %+v", r)
	}

	var maxTake, maxResume time.Duration
	for _, d := range takeovers {
		maxTake = max(maxTake, d)
	}
	for _, d := range resumes {
		maxResume = max(maxResume, d)
	}
	if maxTake > lease+heartbeat+time.Second {
		t.Errorf("takeover took up to %s (lease %s)", maxTake, lease)
	}
	t.Logf("%d kill -9 trials (%d with work in flight), %d server(s): takeover max %s %v; batches moving again max %s after the kill; duplicate copies %d",
		trials, inFlightKills, servers, maxTake.Round(time.Millisecond), roundAll(takeovers), maxResume.Round(time.Millisecond), dups)
}

func roundAll(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond).String()
	}
	return out
}
