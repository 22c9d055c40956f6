package consistency

import (
	"time"

	"github.com/sirupsen/logrus"

	"context"
	"github.com/dynamo-go/dynamo/inventory"
	"testing"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// BenchmarkDiff is the figure (10M files: -files 10000000); the
// inventory is written into a fresh SQLite database first (not timed).
//
//	go test ./consistency -run '^$' -bench Diff -benchtime 1x -files 10000000
func BenchmarkDiff(b *testing.B) {
	for range b.N {
		res, err := Bench(context.Background(), testdb.SQLite(b), BenchOptions{Dir: b.TempDir(), Files: *benchFiles, SpoolBudget: 64 << 20})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.Cold.Total.Seconds(), "cold-s")
		b.ReportMetric(res.Warm.Total.Seconds(), "warm-s")
		b.ReportMetric(float64(res.PeakHeap)/(1<<20), "peakheap-MiB")
		b.ReportMetric(float64(res.MaxRSS)/(1<<20), "maxrss-MiB")
	}
}

// TestBenchFindsPlanted runs the benchmark's whole path small on each
// dialect: the inventory extracted from the database, sorted and merged,
// must meet the listing so that exactly the planted differences (and
// every expected file) are found; Bench fails otherwise. Small budgets
// force several runs on both sides, so the k-way merges are exercised.
// The second run, after inventory changes, must use the cache and still
// find exactly what the changes imply.
func TestBenchFindsPlanted(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		res, err := Bench(context.Background(), d, BenchOptions{Dir: t.TempDir(), Files: 210_000, SpoolBudget: 2 << 20, Readers: 3})
		if err != nil {
			t.Fatal(err)
		}
		if res.Cold.Runs < 2 || res.Cold.InventoryRuns < 3 {
			t.Errorf("cold runs: listing %d, inventory %d; want several of each", res.Cold.Runs, res.Cold.InventoryRuns)
		}
		if c := res.Cold.Counts; c.Matched != 210_000-3-3 {
			t.Errorf("cold: matched %d: %+v", c.Matched, c)
		}
		// Warm: 1% of 210 blocks churned (read again), one removed
		// (block 77), the other 187 from the cache.
		if p := res.Warm.Prepared; p.ReadBlocks != 2 || p.CachedBlocks != 210-2-1 {
			t.Errorf("warm: %+v, want 2 blocks read and 207 cached", p)
		}
	})
}

// BenchmarkExtract measures the inventory side alone: reading the site's
// files out of SQLite into sorted runs.
//
//	go test ./consistency -run '^$' -bench Extract -benchtime 1x -files 1000000
func BenchmarkExtract(b *testing.B) {
	ctx := context.Background()
	d := testdb.SQLite(b)
	if err := benchInventory(ctx, d, *benchFiles, func(string) {}); err != nil {
		b.Fatal(err)
	}
	store, err := inventory.Load(ctx, d, logrus.NewEntry(logrus.New()), nil, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	snap := store.Snapshot()
	site, _ := snap.SiteByName("T1_BENCH_Disk")
	dir := b.TempDir()
	b.ResetTimer()
	for range b.N {
		x, err := ExtractExpected(ctx, d, snap, site.ID, dir, ExtractOptions{Readers: *benchReaders})
		if err != nil || x.Files != int64(*benchFiles) {
			b.Fatalf("%+v %v", x, err)
		}
	}
	b.ReportMetric(float64(*benchFiles)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
}
