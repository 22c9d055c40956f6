package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/adler32"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/demo"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testservers"
	"github.com/dynamo-go/dynamo/inventory"
)

// The demo runs end to end and its report is true: the test reloads the
// inventory from the demo's database and walks the sites' directories
// itself, and every figure of the report must match what is there.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := runDemo(ctx, demo.Options{Dir: dir, Out: &out, Seed: 7}, nil)
	require.NoError(t, err, out.String())
	text := out.String()
	for _, want := range []string{
		"== 1. placement", "dealer: copy /DemoPhysics/Run2026A-v1/AOD -> T2_DEMO_File",
		"== 2. transfers", "transfers: 48/48 files", "checksums ok 48",
		"== 3. cleaning", `line 6 "Protect dataset.name == /DemoPhysics/Run2026A-v1/AOD"`, "dismissed, site over its trigger",
		"== 4. delivery", "project demo-reco ended", "recovery list 0 files",
		"== report", "every file on every site's disk and tape matches the inventory",
	} {
		require.Contains(t, text, want)
	}

	// Transfers: 24 files to the file:// site, 24 to tape, every checksum verified.
	require.EqualValues(t, 48, rep.Moved.Files)
	require.EqualValues(t, 48, rep.Moved.Verified)
	require.Contains(t, text, fmt.Sprintf("moved      48 files, %s; checksums verified 48/48", humanize.Bytes(uint64(rep.Moved.Bytes))))
	require.EqualValues(t, 24, rep.Tape.Files)
	require.EqualValues(t, 24, rep.Tape.Checked)
	require.Empty(t, rep.Tape.Problems)
	require.Positive(t, rep.Deleted.Files)
	require.Equal(t, 8, rep.Consumed.Files)

	// The inventory, loaded afresh from the demo's database.
	d, err := db.Open(ctx, "sqlite:"+filepath.Join(dir, "dynamo.db"))
	require.NoError(t, err)
	defer d.Close()
	log := logrus.New()
	log.SetOutput(&bytes.Buffer{})
	store, err := inventory.Load(ctx, d, logrus.NewEntry(log), nil, time.Now())
	require.NoError(t, err)
	snap := store.Snapshot()
	part, ok := snap.PartitionByName("Default")
	require.True(t, ok)

	// The Dealer and Detox ran as production runs them: as the
	// scheduler's writer applications on the lease holder, their
	// inventory updates applied through its writer.
	var runs []struct {
		App     string `db:"app"`
		Status  string `db:"status"`
		Writer  bool   `db:"writer"`
		Trigger string `db:"trigger_kind"`
		Updates int    `db:"updates"`
	}
	require.NoError(t, d.SelectContext(ctx, &runs, "SELECT app, status, writer, trigger_kind, updates FROM scheduler_runs ORDER BY id"))
	apps := map[string]int{}
	for _, r := range runs {
		require.Equal(t, "ok", r.Status, "%+v", r)
		require.True(t, r.Writer, "%+v", r)
		require.Equal(t, "manual", r.Trigger, "%+v", r)
		require.Positive(t, r.Updates, "%+v", r)
		apps[r.App]++
	}
	require.Equal(t, map[string]int{"dealer": 1, "detox:Default": 1}, apps, "scheduler runs: %+v", runs)
	var detoxCycles []struct {
		ID     int64  `db:"id"`
		Status string `db:"status"`
	}
	require.NoError(t, d.SelectContext(ctx, &detoxCycles, "SELECT id, status FROM detox_cycles"))
	require.Len(t, detoxCycles, 1)
	require.Equal(t, rep.DetoxCycle, detoxCycles[0].ID)
	require.Equal(t, "applied", detoxCycles[0].Status)

	var fileSiteBytes, tapeSiteBytes int64
	for _, u := range rep.After {
		site, ok := snap.SiteByName(u.Site)
		require.True(t, ok, u.Site)
		usage := snap.Usage(site.ID, part.ID)
		require.Equal(t, usage.Physical, u.Bytes, "%s: report vs inventory", u.Site)
		require.Equal(t, usage.Quota, u.Quota, u.Site)

		// What the inventory says the site holds, file by file.
		want := map[string]inventory.File{}
		var invBytes int64
		for br := range snap.BlockReplicasAtSite(site.ID) {
			require.True(t, br.Complete && !br.PendingDeletion, "%s: replica of block %d not settled", u.Site, br.Block)
			files, err := store.Files(ctx, br.Block)
			require.NoError(t, err)
			for _, f := range files {
				want[f.LFN] = f
				invBytes += f.Size
			}
		}
		require.Equal(t, usage.Physical, invBytes, u.Site)
		// Every dataset listed at the site holds blocks there: the replica
		// Detox emptied is gone, not left as an empty copy.
		for dr := range snap.DatasetReplicasAtSite(site.ID) {
			held := false
			for b := range snap.Blocks(dr.Dataset) {
				_, ok := snap.BlockReplica(b.ID, site.ID)
				held = held || ok
			}
			ds, _ := snap.Dataset(dr.Dataset)
			require.True(t, held, "%s: empty replica of %s", u.Site, ds.Name)
		}

		// What the disk holds.
		root := filepath.Join(dir, "sites", u.Site)
		var diskBytes, diskFiles int64
		require.NoError(t, filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			lfn := "/" + filepath.ToSlash(rel)
			f, ok := want[lfn]
			require.True(t, ok, "%s: %s on disk, not in the inventory", u.Site, lfn)
			size, sum, err := fileAdler32(p)
			require.NoError(t, err)
			require.Equal(t, f.Size, size, lfn)
			require.Equal(t, f.Adler32, sum, lfn)
			delete(want, lfn)
			diskBytes += size
			diskFiles++
			return nil
		}))
		require.Empty(t, want, "%s: files in the inventory missing on disk", u.Site)
		require.Equal(t, invBytes, diskBytes, u.Site)
		var disk demo.Disk
		for _, x := range rep.Disk {
			if x.Site == u.Site {
				disk = x
			}
		}
		require.Equal(t, diskBytes, disk.Bytes, u.Site)
		require.Equal(t, diskFiles, disk.Files, u.Site)
		require.Empty(t, disk.Problems, u.Site)
		// The printed row carries the same figures.
		require.Regexp(t, fmt.Sprintf(`(?m)^%s\s.*\s%s\s+%d\s+%d/%d$`, u.Site, regexp.QuoteMeta(humanize.Bytes(uint64(diskBytes))), diskFiles, diskFiles, diskFiles), text)
		if u.Site == demo.FileSite {
			fileSiteBytes = diskBytes
			require.Equal(t, 24-rep.Deleted.Files, diskFiles, "the file site holds what was moved minus what Detox deleted")
			require.Equal(t, rep.Moved.Bytes/2-rep.Deleted.Bytes, diskBytes)
			// Cleaned from over the high watermark to under the low one.
			require.Less(t, float64(diskBytes)/float64(usage.Quota), demo.Low)
		}
		if u.Site == demo.TapeSite {
			tapeSiteBytes = diskBytes
			require.EqualValues(t, 24, diskFiles)
		}
	}
	require.Positive(t, fileSiteBytes)
	require.Equal(t, rep.Moved.Bytes/2, tapeSiteBytes, "half the bytes moved went to tape")
	// The nearline area's tape directory holds the same 24 files.
	var tapeFiles, tapeBytes int64
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "sites", demo.TapeSite+".tape"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		size, _, err := fileAdler32(p)
		tapeFiles, tapeBytes = tapeFiles+1, tapeBytes+size
		return err
	}))
	require.EqualValues(t, 24, tapeFiles)
	require.Equal(t, tapeSiteBytes, tapeBytes)
	require.Equal(t, rep.Tape.Bytes, tapeBytes)
}

// A directory that cannot be used gives a clear error before anything
// starts.
func TestDemoBadDirectory(t *testing.T) {
	busy := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(busy, "x"), nil, 0o644))
	_, stderr, err := runDynamo(t, "demo", "--dir", busy)
	require.ErrorContains(t, err, "is not empty", stderr)
	require.Equal(t, 2, exitCode(err))

	busyPort, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busyPort.Close()
	_, err = runDemo(context.Background(), demo.Options{Dir: t.TempDir(), Listen: busyPort.Addr().String()}, nil)
	require.ErrorContains(t, err, "--listen "+busyPort.Addr().String()+": cannot serve the REST API there")
	require.Equal(t, 2, exitCode(err))

	file := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err = runDemo(context.Background(), demo.Options{Dir: filepath.Join(file, "sub")}, nil)
	require.ErrorContains(t, err, "demo directory")
	require.Equal(t, 2, exitCode(err))
}

// lockedBuffer is an io.Writer safe to read while the demo writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// With --keep the system keeps serving after the report: the REST API
// answers for every component's routes until the context ends.
func TestDemoKeepServes(t *testing.T) {
	api := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t))
	var out lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := runDemo(ctx, demo.Options{Dir: filepath.Join(t.TempDir(), "d"), Keep: true, Listen: api, Out: &out}, nil)
		done <- err
	}()
	deadline := time.After(90 * time.Second)
	for !strings.Contains(out.String(), "keeps running") {
		select {
		case err := <-done:
			t.Fatalf("demo ended: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("no --keep message:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	require.Contains(t, out.String(), "curl http://"+api+"/api/v1/sites")
	for _, path := range []string{"/api/v1/sites", "/api/v1/fileop/status", "/api/v1/projects", "/api/v1/detox/cycles", "/api/v1/copy-requests"} {
		resp, err := http.Get("http://" + api + path)
		require.NoError(t, err, path)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
		if path == "/api/v1/projects" {
			require.Contains(t, string(body), "demo-reco")
		}
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the kept demo did not stop")
	}
}

// fileAdler32 is the size and adler32 of a file, computed here rather
// than by the demo whose report it checks.
func fileAdler32(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := adler32.New()
	n, err := io.Copy(h, f)
	return n, fmt.Sprintf("%08x", h.Sum32()), err
}
