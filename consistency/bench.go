package consistency

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// BenchResult are the figures of Bench.
type BenchResult struct {
	Files int
	// Setup is the untimed time to write the inventory into the database
	// and load it.
	Setup time.Duration
	// Cold is the first run (no cache: every file read from the
	// database); Warm the next one, after a round of inventory changes.
	Cold, Warm BenchRun
	// PeakHeap is the largest HeapInuse sampled every 10ms during the
	// timed phases; MaxRSS the process's maximum resident set
	// (getrusage), whole process and run.
	PeakHeap uint64
	MaxRSS   uint64
}

// BenchRun are the figures of one timed run.
type BenchRun struct {
	// Spool is the time to push the listing (generated per directory in
	// shuffled directory order) through the Spool: buffering, sorting runs
	// and writing them. It includes generating the names.
	Spool time.Duration
	// Prepare is the time to get the inventory side ready
	// (PrepareExpected: the change log, the database reads); it runs
	// alongside the spool, as it runs alongside the listing in a run.
	Prepare time.Duration
	// Diff is the time to k-way merge both sides, diff them, write the
	// NDJSON reports and the next cache.
	Diff time.Duration
	// Total is the wall time from the first listing record to the last
	// report line: max(Spool, Prepare) + Diff.
	Total time.Duration
	// Runs are the sorted runs written by the listing and the inventory side.
	Runs, InventoryRuns int
	Prepared            PrepareStats
	// Counts of the diff; the planted differences must be found exactly.
	Counts Counts
}

// BenchOptions configure Bench.
type BenchOptions struct {
	// Dir is the work directory for spools and reports.
	Dir string
	// Files at the benchmarked site.
	Files int
	// SpoolBudget is the memory budget of the listing spool and of each
	// inventory reader, bytes.
	SpoolBudget int
	// Readers is the number of parallel inventory readers (0: default).
	Readers int
	// Progress, if set, is told how the (untimed) setup goes.
	Progress func(string)
}

// Planted difference rates of Bench: one file in plantEvery of each kind.
const plantEvery = 100_000

// Bench layout: directories of benchDirFiles files, datasets of
// benchDSBlocks blocks spread over benchDSBlocks directories, so that
// each block's files are interleaved with its siblings' (as CMS blocks
// share a dataset's directories) and the inventory side needs sorting.
const (
	benchDirFiles = 1000
	benchDSBlocks = 10
	benchDSFiles  = benchDirFiles * benchDSBlocks
)

func benchName(buf []byte, i int) []byte {
	d := i / benchDirFiles
	buf = append(buf[:0], "/store/mc/Run2026/Prim"...)
	buf = strconv.AppendInt(buf, int64(d%97), 10)
	buf = append(buf, "/AODSIM/"...)
	buf = strconv.AppendInt(buf, int64(d), 36)
	buf = append(buf, "/file-"...)
	buf = strconv.AppendInt(buf, int64(i)*7919, 16)
	return append(buf, ".root"...)
}

func benchSize(i int) int64 { return 1_000_000 + int64(i%5000) }

// benchBlock is the block (1-based id) of file i.
func benchBlock(i int) int { return i/benchDSFiles*benchDSBlocks + i%benchDSBlocks + 1 }

// Bench measures a consistency diff at scale, the inventory side included.
// Setup (not timed) writes into d, which must be migrated and empty, an
// inventory with opts.Files files at site T1_BENCH_Disk (every 100th
// block replica incomplete, its files listed as present) and a tenth as
// many at another site, and loads it. Timed: the site listing (every
// 100,000th file missing, one orphan and one wrong size per 100,000) is
// spooled while the inventory side is extracted from the database, then
// the two are diffed. The planted counts must come out exactly.
func Bench(ctx context.Context, d *db.DB, opts BenchOptions) (BenchResult, error) {
	n := opts.Files
	res := BenchResult{Files: n}
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	if n < benchDSFiles || n%benchDSFiles != 0 {
		return res, fmt.Errorf("bench: files must be a positive multiple of %d", benchDSFiles)
	}
	start := time.Now()
	if err := benchInventory(ctx, d, n, progress); err != nil {
		return res, err
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	store, err := inventory.Load(ctx, d, logrus.NewEntry(log), nil, time.Now())
	if err != nil {
		return res, err
	}
	snap := store.Snapshot()
	site, ok := snap.SiteByName("T1_BENCH_Disk")
	if !ok {
		return res, fmt.Errorf("bench: site not loaded")
	}
	res.Setup = time.Since(start)
	progress(fmt.Sprintf("inventory of %d files written and loaded in %v", n, res.Setup.Round(time.Second)))

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

	cache := filepath.Join(opts.Dir, "cache")
	plan := benchPlan{n: n}
	if res.Cold, err = benchRun(ctx, d, store, site.ID, cache, filepath.Join(opts.Dir, "cold"), plan, opts); err != nil {
		return res, fmt.Errorf("bench cold run: %w", err)
	}
	if !res.Cold.Prepared.Cold {
		return res, fmt.Errorf("bench: first run found a cache: %+v", res.Cold.Prepared)
	}
	progress(fmt.Sprintf("cold run: %v", res.Cold.Total.Round(time.Millisecond)))

	// A round of changes between the runs, through the inventory's typed
	// updates (so the change log has them): a file more in 1% of the
	// site's blocks (the site has it too), a few blocks gone from the
	// site (their files stay: orphans now).
	plan.churn = true
	if err := benchChurn(ctx, store, site.ID, plan); err != nil {
		return res, err
	}
	if res.Warm, err = benchRun(ctx, d, store, site.ID, cache, filepath.Join(opts.Dir, "warm"), plan, opts); err != nil {
		return res, fmt.Errorf("bench warm run: %w", err)
	}
	if res.Warm.Prepared.Cold {
		return res, fmt.Errorf("bench: second run did not use the cache: %s", res.Warm.Prepared.Reason)
	}
	res.PeakHeap = peak.Load()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		res.MaxRSS = uint64(ru.Maxrss) * 1024
	}
	return res, nil
}

// benchPlan says what the site holds and the inventory expects.
type benchPlan struct {
	n     int
	churn bool // after the round of changes
}

// Churned blocks gain a file; removed blocks leave the site's inventory.
func (benchPlan) churned(block int) bool { return block%100 == 50 }
func (benchPlan) removed(block int) bool { return block%2000 == 77 }

// want computes the counts the diff must find.
func (p benchPlan) want() Counts {
	var c Counts
	for i := 0; i < p.n; i++ {
		blk := benchBlock(i)
		gone := p.churn && p.removed(blk)
		switch {
		case i%plantEvery == 1: // not on the site
			if !gone {
				c.Missing++
			}
		case gone: // on the site only
			c.Orphans++
		case i%plantEvery == 2:
			c.SizeMismatch++
		}
		if i%plantEvery == 3 {
			c.Orphans++
		}
		if !gone {
			c.ExpectedFiles++
		}
		if p.churn && p.churned(blk) && i%benchDSFiles < benchDSBlocks { // the block's first file
			c.ExpectedFiles++ // its new sibling, on both sides
		}
	}
	return c
}

// benchRun is one timed run: the listing spooled while the inventory side
// is prepared, then the diff; the counts are checked against the plan.
func benchRun(ctx context.Context, d *db.DB, store *inventory.Store, site inventory.SiteID, cache, dir string, plan benchPlan, opts BenchOptions) (BenchRun, error) {
	var r BenchRun
	start := time.Now()
	type prepDone struct {
		p   *PreparedExpected
		err error
		at  time.Duration
	}
	prepared := make(chan prepDone, 1)
	go func() {
		p, err := PrepareExpected(ctx, d, store.Snapshot(), site, cache, filepath.Join(dir, "inventory"), ExtractOptions{Readers: opts.Readers, Budget: opts.SpoolBudget})
		prepared <- prepDone{p, err, time.Since(start)}
	}()
	runs, err := benchListing(filepath.Join(dir, "site"), plan, opts.SpoolBudget)
	r.Spool = time.Since(start)
	x := <-prepared
	if err == nil {
		err = x.err
	}
	if err != nil {
		return r, err
	}
	r.Prepare, r.Prepared, r.Runs = x.at, x.p.Stats, len(runs)
	r.InventoryRuns = len(x.p.fresh)

	diffStart := time.Now()
	siteStream, err := MergeRuns(runs)
	if err != nil {
		return r, err
	}
	defer siteStream.Close()
	inv, err := x.p.Open(store.Snapshot())
	if err != nil {
		return r, err
	}
	defer x.p.Abandon()
	defer inv.Close()
	rw, err := newReportWriter(filepath.Join(dir, "report"))
	if err != nil {
		return r, err
	}
	r.Counts, err = Diff(siteStream, inv, Filter{}, rw)
	if cerr := rw.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = x.p.Commit()
	}
	if err != nil {
		return r, err
	}
	r.Diff = time.Since(diffStart)
	r.Total = time.Since(start)
	c, want := r.Counts, plan.want()
	if c.Missing != want.Missing || c.SizeMismatch != want.SizeMismatch || c.Orphans != want.Orphans || c.ExpectedFiles != want.ExpectedFiles {
		return r, fmt.Errorf("bench: differences not found exactly: got %+v, want missing %d, size %d, orphans %d, expected %d",
			c, want.Missing, want.SizeMismatch, want.Orphans, want.ExpectedFiles)
	}
	return r, nil
}

// benchChurn applies the plan's changes through the store.
func benchChurn(ctx context.Context, store *inventory.Store, site inventory.SiteID, plan benchPlan) error {
	snap := store.Snapshot()
	at := time.Now()
	var name []byte
	_, err := store.Write(ctx, at, func(tx *inventory.Txn) error {
		for ds := 0; ds < plan.n/benchDSFiles; ds++ {
			for b := range benchDSBlocks {
				id := ds*benchDSBlocks + b + 1
				bid := inventory.BlockID(id)
				switch {
				case plan.removed(id):
					if err := tx.Add(inventory.DeleteBlockReplica{Block: bid, Site: site}); err != nil {
						return err
					}
				case plan.churned(id):
					blk, ok := snap.Block(bid)
					if !ok {
						return fmt.Errorf("bench: block %d not loaded", id)
					}
					first := ds*benchDSFiles + b
					name = append(benchName(name, first), ".v2"...)
					f := inventory.File{ID: tx.NewFileID(), Block: bid, LFN: string(name), Size: benchSize(first), Adler32: "0badc0de"}
					blk.NumFiles++
					blk.Size += f.Size
					rep, _ := tx.BlockReplica(bid, site)
					rep.NumFiles, rep.Size, rep.LastUpdate = rep.NumFiles+1, rep.Size+f.Size, at.Unix()
					if err := tx.Add(inventory.UpsertBlock{Block: blk}, inventory.UpsertFiles{Block: bid, Files: []inventory.File{f}},
						inventory.UpsertBlockReplica{BlockReplica: rep}); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	return err
}

// benchListing spools the site's listing: directories in shuffled order,
// as parallel listing delivers them, with the planted differences.
func benchListing(dir string, plan benchPlan, budget int) ([]string, error) {
	n := plan.n
	sp, err := NewSpool(dir, budget, nil)
	if err != nil {
		return nil, err
	}
	var buf []byte
	dirs := n / benchDirFiles
	for _, d := range rand.New(rand.NewPCG(1, 2)).Perm(dirs) {
		for i := d * benchDirFiles; i < (d+1)*benchDirFiles; i++ {
			if i%plantEvery == 1 { // missing
				continue
			}
			buf = benchName(buf, i)
			f := SiteFile{LFN: string(buf), Size: benchSize(i), ModTime: 1}
			if i%plantEvery == 2 { // wrong size
				f.Size++
			}
			if err := sp.Add(f); err != nil {
				return nil, err
			}
			if i%plantEvery == 3 { // orphan next to it
				if err := sp.Add(SiteFile{LFN: string(buf) + ".orphan", Size: 5, ModTime: 1}); err != nil {
					return nil, err
				}
			}
			if plan.churn && plan.churned(benchBlock(i)) && i%benchDSFiles < benchDSBlocks {
				if err := sp.Add(SiteFile{LFN: string(buf) + ".v2", Size: benchSize(i), ModTime: 1}); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := sp.Flush(); err != nil {
		return nil, err
	}
	return sp.Runs(), nil
}

// benchInventory writes the bench inventory with multi-row INSERTs built
// as literal SQL (ids, sizes and the generated names need no quoting).
func benchInventory(ctx context.Context, d *db.DB, n int, progress func(string)) error {
	var count int
	if err := d.GetContext(ctx, &count, "SELECT COUNT(*) FROM files"); err != nil {
		return err
	}
	if count > 0 {
		return fmt.Errorf("bench: the database already holds %d files; use an empty one", count)
	}
	ins := &benchInserter{ctx: ctx, d: d}
	ins.exec("INSERT INTO sites (id, name, storage_type, status) VALUES (1, 'T1_BENCH_Disk', 'disk', 'ready'), (2, 'T2_BENCH_Other', 'disk', 'ready')")
	ins.exec("INSERT INTO owner_groups (id, name, olevel) VALUES (1, 'DataOps', 'block')")
	other := n / 10 / benchDSFiles * benchDSFiles
	total := n + other
	var buf, name []byte
	for ds := 0; ds < total/benchDSFiles; ds++ {
		siteID := 1
		if ds*benchDSFiles >= n {
			siteID = 2
		}
		ins.row("datasets", "id, name, status, data_type", fmt.Sprintf("(%d, '/Prim%d/Run2026-v1/AODSIM', 'valid', 'mc')", ds+1, ds))
		ins.row("dataset_replicas", "dataset_id, site_id, growing, group_id", fmt.Sprintf("(%d, %d, 0, 1)", ds+1, siteID))
		for b := range benchDSBlocks {
			id := ds*benchDSBlocks + b + 1
			ins.row("blocks", "id, dataset_id, name, size, num_files", fmt.Sprintf("(%d, %d, 'b%d', 0, %d)", id, ds+1, b, benchDirFiles))
			complete := 1
			if id%100 == 0 {
				complete = 0
			}
			ins.row("block_replicas", "block_id, site_id, group_id, flags, is_complete, size, num_files, last_update",
				fmt.Sprintf("(%d, %d, 1, 0, %d, 0, %d, 1)", id, siteID, complete, benchDirFiles))
		}
		// Files are written block by block with consecutive ids, as they are
		// injected: a block's files arrive together.
		for k := range benchDSFiles {
			b, pos := k/benchDirFiles, k%benchDirFiles
			i := ds*benchDSFiles + pos*benchDSBlocks + b // the file's index in the layout
			blk := benchBlock(i)
			fid := int64(ds*benchDSFiles+k) + 1
			buf = append(buf[:0], '(')
			buf = strconv.AppendInt(buf, fid, 10)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, int64(blk), 10)
			buf = append(buf, ",'"...)
			if siteID == 2 {
				buf = append(buf, "/store/data"...)
			}
			name = benchName(name, i)
			buf = append(append(buf, name...), "',"...)
			buf = strconv.AppendInt(buf, benchSize(i), 10)
			buf = append(buf, ",'0badc0de')"...)
			ins.row("files", "id, block_id, lfn, size, adler32", string(buf))
			if blk%100 == 0 {
				ins.row("block_replica_files", "block_id, site_id, file_id", fmt.Sprintf("(%d, %d, %d)", blk, siteID, fid))
			}
		}
		if ds%100 == 99 {
			progress(fmt.Sprintf("setup: %d of %d files written", (ds+1)*benchDSFiles, total))
		}
	}
	ins.flushAll()
	return ins.err
}

// benchInserter batches rows into multi-row INSERTs, a few statements per
// transaction. The first error sticks and stops further writes.
type benchInserter struct {
	ctx     context.Context
	d       *db.DB
	tables  map[string]*benchTable
	order   []string
	pending []string
	err     error
}

type benchTable struct {
	cols string
	rows []string
}

const benchRowsPerStmt, benchStmtsPerTx = 1000, 20

func (b *benchInserter) exec(q string) {
	b.pending = append(b.pending, q)
	if len(b.pending) >= benchStmtsPerTx {
		b.commit()
	}
}

func (b *benchInserter) row(table, cols, values string) {
	if b.tables == nil {
		b.tables = map[string]*benchTable{}
	}
	t := b.tables[table]
	if t == nil {
		t = &benchTable{cols: cols}
		b.tables[table] = t
		b.order = append(b.order, table)
	}
	t.rows = append(t.rows, values)
	if len(t.rows) >= benchRowsPerStmt {
		b.stmt(table, t)
	}
}

func (b *benchInserter) stmt(table string, t *benchTable) {
	if len(t.rows) > 0 {
		b.exec("INSERT INTO " + table + " (" + t.cols + ") VALUES " + strings.Join(t.rows, ","))
		t.rows = t.rows[:0]
	}
}

func (b *benchInserter) commit() {
	if b.err == nil && len(b.pending) > 0 {
		b.err = b.d.InTx(b.ctx, func(tx *sqlx.Tx) error {
			for _, q := range b.pending {
				if _, err := tx.ExecContext(b.ctx, q); err != nil {
					return err
				}
			}
			return nil
		})
	}
	b.pending = b.pending[:0]
}

func (b *benchInserter) flushAll() {
	for _, name := range b.order {
		b.stmt(name, b.tables[name])
	}
	b.commit()
}
