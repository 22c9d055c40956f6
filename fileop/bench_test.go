package fileop_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/fileop/fileoptest"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchDB is SQLite by default; DYNAMO_BENCH_MYSQL=1 uses the MariaDB of
// DYNAMO_TEST_MYSQL_DSN.
func benchDB(b *testing.B) *db.DB {
	if os.Getenv("DYNAMO_BENCH_MYSQL") != "" {
		return testdb.MySQL(b)
	}
	return testdb.SQLite(b)
}

// runFed queues the federation's block for the destination and runs a
// daemon until every file is done; it returns the elapsed time from the
// queueing to the last recorded completion (database state included).
func runFed(b *testing.B, d *db.DB, fed *fileoptest.Federation, cfg fileop.Config, o fileop.Options) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dm, err := fileop.New(cfg, fed.Store, logDiscard(), o)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := fed.QueueCopy(ctx, time.Now(), 0); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- dm.Run(ctx) }()
	dm.Wake()
	for {
		var n int
		if err := d.Get(&n, "SELECT COUNT(*) FROM fileop_subscriptions WHERE live = 1"); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	var held int
	_ = d.Get(&held, "SELECT COUNT(*) FROM fileop_subscriptions WHERE state <> 'done'")
	if held != 0 {
		b.Fatalf("%d subscriptions did not finish", held)
	}
	return el
}

func newFed(b *testing.B, d *db.DB, n int, size int64) *fileoptest.Federation {
	ctx := context.Background()
	s, err := inventory.Load(ctx, d, logDiscard(), nil, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	fed, err := fileoptest.Setup(ctx, s, b.TempDir(), n, size, 5, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return fed
}

// BenchmarkLargeFile copies one large file (DYNAMO_BENCH_FILEOP_MB, default
// 1024) between two local sites through the daemon (native backend, SQLite
// state) and compares with `cp` + sync of the same bytes in the same run:
// cp runs before and after the daemon (the machine is shared; the order
// matters for the disk's write-back), and the ratio is taken against the
// faster cp. driver.Copy alone is timed last, to separate the engine's
// overhead from the data path's. Run with -benchtime 1x.
func BenchmarkLargeFile(b *testing.B) {
	mb := envInt("DYNAMO_BENCH_FILEOP_MB", 1024)
	d := benchDB(b)
	fed := newFed(b, d, 1, int64(mb)<<20)
	src := filepath.Join(fed.SrcDir, fed.Files[0].LFN)
	scratch := b.TempDir()
	cpDst := filepath.Join(scratch, "cp.out")
	// Flush the source written by the setup (its write-back would slow
	// whatever runs first) and warm the page cache the same way for all.
	if out, err := exec.Command("sh", "-c", "sync && cat "+src+" >/dev/null").CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	cp := func() time.Duration {
		os.Remove(cpDst)
		t0 := time.Now()
		if out, err := exec.Command("sh", "-c", "cp "+src+" "+cpDst+" && sync "+cpDst).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
		el := time.Since(t0)
		os.Remove(cpDst)
		exec.Command("sync").Run()
		return el
	}
	b.ResetTimer()
	cp1 := cp()
	cfg := fileop.DefaultConfig()
	cfg.Interval = 10 * time.Millisecond
	el := runFed(b, d, fed, cfg, fileop.Options{})
	exec.Command("sync").Run()
	cp2 := cp()
	srcD, err := driver.Open(context.Background(), "file://"+fed.SrcDir, driver.Options{})
	if err != nil {
		b.Fatal(err)
	}
	dstD, err := driver.Open(context.Background(), "file://"+scratch, driver.Options{})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if _, err := driver.Copy(context.Background(), dstD, "copy.out", srcD, fed.Files[0].LFN, fed.Files[0].Size, fed.Files[0].Adler32); err != nil {
		b.Fatal(err)
	}
	copyTime := time.Since(t0)
	b.StopTimer()
	mib := float64(mb)
	b.ReportMetric(mib/cp1.Seconds(), "cp_before_MiB/s")
	b.ReportMetric(mib/el.Seconds(), "fileop_MiB/s")
	b.ReportMetric(mib/cp2.Seconds(), "cp_after_MiB/s")
	b.ReportMetric(mib/copyTime.Seconds(), "driverCopy_MiB/s")
	b.ReportMetric(min(cp1, cp2).Seconds()/el.Seconds(), "ratio_to_best_cp")
}

// BenchmarkSmallFiles transfers DYNAMO_BENCH_FILEOP_FILES (default 5000)
// 1 KiB files end to end: queueing, dispatch, copy with adler32, and the
// inventory + queue updates. Run with -benchtime 1x. The Gfal2
// sub-benchmark uses DYNAMO_BENCH_FILEOP_GFAL_FILES (default 100).
func BenchmarkSmallFiles(b *testing.B) {
	for _, bk := range []string{"native", "gfal2"} {
		b.Run(bk, func(b *testing.B) {
			n := envInt("DYNAMO_BENCH_FILEOP_FILES", 5000)
			cfg := fileop.DefaultConfig()
			cfg.Interval = 10 * time.Millisecond
			cfg.Backend = bk
			cfg.Native.Workers = envInt("DYNAMO_BENCH_FILEOP_WORKERS", 64) // small files are latency-bound (fsync per file)
			cfg.BatchSize = 500
			cfg.PerLink, cfg.PerSite = cfg.MaxPending, cfg.MaxPending // one link: let it use all the capacity
			if bk == "gfal2" {
				if _, err := exec.LookPath("gfal-copy"); err != nil {
					b.Skip("gfal-copy not installed")
				}
				n = envInt("DYNAMO_BENCH_FILEOP_GFAL_FILES", 100)
				cfg.Gfal2.Workers = 8
			}
			d := benchDB(b)
			fed := newFed(b, d, n, 1024)
			// The filesystem's own small-file rate, for reference: cp -r of
			// the same tree.
			t0 := time.Now()
			if out, err := exec.Command("cp", "-r", fed.SrcDir, filepath.Join(b.TempDir(), "cp")).CombinedOutput(); err != nil {
				b.Fatalf("cp -r: %v %s", err, out)
			}
			cpRate := float64(n) / time.Since(t0).Seconds()
			b.ResetTimer()
			el := runFed(b, d, fed, cfg, fileop.Options{})
			b.StopTimer()
			b.ReportMetric(float64(n)/el.Seconds(), "files/s")
			b.ReportMetric(cpRate, "cp_files/s") // after ResetTimer, which clears metrics
		})
	}
}

// instant completes every task at once without touching storage: it
// measures the daemon's own cost (dispatch, claims, results, inventory
// updates, history) per file.
type instant struct{ q chan fileop.Batch }

func (instant) Name() string { return "instant" }
func (i instant) Submit(_ context.Context, b fileop.Batch) (string, error) {
	i.q <- b
	return "", nil
}
func (i instant) Run(ctx context.Context, report func(fileop.Result)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-i.q:
			for _, t := range b.Tasks {
				report(fileop.Result{SubID: t.SubID, BatchID: b.ID, Bytes: t.Size, Checksum: fileop.VerdictOK})
			}
		}
	}
}

// BenchmarkQueueOnly is BenchmarkSmallFiles with a backend that finishes
// every task instantly: the state machine and inventory bookkeeping alone.
func BenchmarkQueueOnly(b *testing.B) {
	n := envInt("DYNAMO_BENCH_FILEOP_FILES", 5000)
	cfg := fileop.DefaultConfig()
	cfg.Interval = 10 * time.Millisecond
	cfg.BatchSize = 500
	cfg.PerLink, cfg.PerSite = cfg.MaxPending, cfg.MaxPending // one link: let it use all the capacity
	d := benchDB(b)
	fed := newFed(b, d, n, 1024)
	b.ResetTimer()
	el := runFed(b, d, fed, cfg, fileop.Options{Backend: instant{q: make(chan fileop.Batch, 1024)}})
	b.StopTimer()
	b.ReportMetric(float64(n)/el.Seconds(), "files/s")
}
