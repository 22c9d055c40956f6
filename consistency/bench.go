package consistency

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// BenchResult are the figures of Bench.
type BenchResult struct {
	Files int
	// Spool is the time to push the listing (generated per directory in
	// shuffled directory order) through the Spool: buffering, sorting runs
	// and writing them. It includes generating the names.
	Spool time.Duration
	// Runs is the number of sorted runs written.
	Runs int
	// Diff is the time to k-way merge the runs, stream the inventory dump
	// from disk, diff the two and write the NDJSON reports.
	Diff time.Duration
	// Counts of the diff; the planted differences must be found exactly.
	Counts Counts
	// PeakHeap is the largest HeapInuse sampled every 10ms; MaxRSS the
	// process's maximum resident set (getrusage), whole process.
	PeakHeap uint64
	MaxRSS   uint64
}

// Planted difference rates of Bench: one file in plantEvery of each kind.
const plantEvery = 100_000

// Bench measures the consistency diff at scale: it writes a synthetic
// sorted inventory dump of n files to dir (not timed), spools a site
// listing of the same files with planted differences (every 100,000th file
// missing, one orphan, one wrong size per 100,000), then diffs the two.
// Memory is bounded by spoolBudget while spooling and by one read buffer
// per run while merging. The planted counts are checked.
func Bench(dir string, n int, spoolBudget int) (BenchResult, error) {
	res := BenchResult{Files: n}
	const filesPerDir = 1000
	dirs := (n + filesPerDir - 1) / filesPerDir
	name := func(buf []byte, i int) []byte {
		d := i / filesPerDir
		buf = append(buf[:0], "/store/mc/Run2026/Prim"...)
		buf = strconv.AppendInt(buf, int64(d%97), 10)
		buf = append(buf, "/AODSIM/"...)
		buf = strconv.AppendInt(buf, int64(d), 36)
		buf = append(buf, "/file-"...)
		buf = strconv.AppendInt(buf, int64(i)*7919, 16)
		return append(buf, ".root"...)
	}
	size := func(i int) int64 { return 1_000_000 + int64(i%5000) }

	// Inventory side: sort (dir, file) names in byte order by generating
	// and sorting per directory group. Names of one directory sort
	// together only within a directory, so build the dump through a spool
	// too (its own time is not counted in the figures).
	invSpool, err := NewSpool(filepath.Join(dir, "inv"), spoolBudget, nil)
	if err != nil {
		return res, err
	}
	var buf []byte
	for i := 0; i < n; i++ {
		buf = name(buf, i)
		if err := invSpool.Add(SiteFile{LFN: string(buf), Size: size(i), ModTime: int64(i)}); err != nil {
			return res, err
		}
	}
	if err := invSpool.Flush(); err != nil {
		return res, err
	}
	invMerged, err := MergeRuns(invSpool.Runs())
	if err != nil {
		return res, err
	}
	dump := filepath.Join(dir, "inventory.bin")
	err = WriteInventoryDump(dump, func(yield func(*ExpectedFile) bool) {
		var e ExpectedFile
		for invMerged.Next() {
			r := invMerged.Rec()
			e = ExpectedFile{LFN: string(r.LFN), Size: r.Size, FileID: r.ModTime + 1, BlockID: int32(r.ModTime / filesPerDir)}
			if !yield(&e) {
				return
			}
		}
	})
	invMerged.Close()
	if err != nil {
		return res, err
	}
	os.RemoveAll(filepath.Join(dir, "inv"))

	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	defer close(stop)
	runtime.GC()

	// Site side: directories in shuffled order, as parallel listing
	// delivers them.
	start := time.Now()
	sp, err := NewSpool(filepath.Join(dir, "site"), spoolBudget, nil)
	if err != nil {
		return res, err
	}
	order := rand.New(rand.NewPCG(1, 2)).Perm(dirs)
	for _, d := range order {
		for i := d * filesPerDir; i < min(n, (d+1)*filesPerDir); i++ {
			if i%plantEvery == 1 { // missing
				continue
			}
			buf = name(buf, i)
			f := SiteFile{LFN: string(buf), Size: size(i), ModTime: 1}
			if i%plantEvery == 2 { // wrong size
				f.Size++
			}
			if err := sp.Add(f); err != nil {
				return res, err
			}
			if i%plantEvery == 3 { // orphan next to it
				if err := sp.Add(SiteFile{LFN: string(buf) + ".orphan", Size: 5, ModTime: 1}); err != nil {
					return res, err
				}
			}
		}
	}
	if err := sp.Flush(); err != nil {
		return res, err
	}
	res.Spool = time.Since(start)
	res.Runs = len(sp.Runs())

	start = time.Now()
	site, err := MergeRuns(sp.Runs())
	if err != nil {
		return res, err
	}
	defer site.Close()
	inv, err := OpenInventoryDump(dump)
	if err != nil {
		return res, err
	}
	defer inv.Close()
	rw, err := newReportWriter(filepath.Join(dir, "report"))
	if err != nil {
		return res, err
	}
	res.Counts, err = Diff(site, inv, Filter{}, rw)
	if cerr := rw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, err
	}
	res.Diff = time.Since(start)
	res.PeakHeap = peak.Load()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		res.MaxRSS = uint64(ru.Maxrss) * 1024
	}
	planted := int64((n + plantEvery - 2) / plantEvery) // indices ≡ 1 mod plantEvery below n
	c := res.Counts
	if c.Missing != planted || c.SizeMismatch != int64((n+plantEvery-3)/plantEvery) || c.Orphans != int64((n+plantEvery-4)/plantEvery) {
		return res, fmt.Errorf("bench: planted differences not found exactly: %+v", c)
	}
	return res, nil
}
