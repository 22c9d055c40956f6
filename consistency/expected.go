package consistency

// The inventory side of the diff: the files the inventory places at a site.
//
// Files are never held in memory, so they come from the database. One
// query joining files to the site's block replicas in LFN order walks the
// files index of the whole catalogue (every site's files) and probes the
// replicas table per row: ~200k rows/s, about a minute for a 10M-file site,
// and growing with the catalogue rather than the site. Instead the
// snapshot says which blocks the site holds and in what state; parallel
// readers fetch exactly those blocks' files through the files_block index
// (work proportional to the site), sort them in memory in bounded batches
// and write sorted runs, and the diff k-way merges the runs. The Checker
// runs this alongside the listing, which takes far longer.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// ExtractOptions tune ExtractExpected; zero values take the defaults.
type ExtractOptions struct {
	// Readers is the number of parallel database readers (connections).
	// Default 2.
	Readers int
	// BatchBlocks is the number of blocks read per query. Default 64.
	BatchBlocks int
	// Budget is the memory, in bytes, each reader fills with records
	// before it sorts them and writes a run. Default 64 MiB.
	Budget int
}

func (o *ExtractOptions) defaults() {
	if o.Readers <= 0 {
		o.Readers = 2
	}
	if o.BatchBlocks <= 0 {
		o.BatchBlocks = 64
	}
	if o.Budget <= 0 {
		o.Budget = 64 << 20
	}
}

// Extracted is the result of ExtractExpected.
type Extracted struct {
	// Runs are the sorted run files; MergeExpected streams them.
	Runs []string
	// Blocks and Files count what was read.
	Blocks, Files int64
}

// siteReplica is what extraction needs of one block replica at the site.
type siteReplica struct {
	block  inventory.BlockID
	state  uint8 // StatePresent, or StateDeleting for a replica pending deletion
	open   bool  // incomplete: files not in block_replica_files are incoming
	update int64
	files  int32 // in the block, to size buffers
}

// ExtractExpected writes the files the inventory places at site into
// sorted run files in dir (created; emptied first). Which blocks, and the
// state of their replicas, come from snap; the files of each block, and the
// present files of incomplete replicas, from the database.
func ExtractExpected(ctx context.Context, d *db.DB, snap *inventory.Snapshot, site inventory.SiteID, dir string, opts ExtractOptions) (Extracted, error) {
	return extractReplicas(ctx, d, siteReplicas(snap, site), site, dir, opts)
}

// siteReplicas lists the block replicas at site in block id order, with
// the number of files their blocks hold.
func siteReplicas(snap *inventory.Snapshot, site inventory.SiteID) []siteReplica {
	var reps []siteReplica
	for br := range snap.BlockReplicasAtSite(site) {
		r := siteReplica{block: br.Block, open: !br.Complete, update: br.LastUpdate}
		if b, ok := snap.Block(br.Block); ok {
			r.files = b.NumFiles
		}
		if br.PendingDeletion {
			r.state, r.open = StateDeleting, false
		}
		reps = append(reps, r)
	}
	// Files are stored in id order, which follows the order blocks were
	// filled: reading blocks in id order keeps the reads near-sequential.
	slices.SortFunc(reps, func(a, b siteReplica) int { return int(a.block) - int(b.block) })
	return reps
}

// extractReplicas reads the files of reps into sorted runs in dir.
func extractReplicas(ctx context.Context, d *db.DB, reps []siteReplica, site inventory.SiteID, dir string, opts ExtractOptions) (Extracted, error) {
	opts.defaults()
	var res Extracted
	if err := os.RemoveAll(dir); err != nil {
		return res, fmt.Errorf("inventory extract: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("inventory extract: %w", err)
	}
	var estFiles int64
	for _, r := range reps {
		estFiles += int64(r.files)
	}
	res.Blocks = int64(len(reps))

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	batches := make(chan []siteReplica)
	go func() {
		defer close(batches)
		for lo := 0; lo < len(reps); lo += opts.BatchBlocks {
			select {
			case batches <- reps[lo:min(lo+opts.BatchBlocks, len(reps))]:
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		files int64
	)
	for i := range opts.Readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := &extractor{d: d, site: site, dir: dir, prefix: fmt.Sprintf("inv-%02d-", i), budget: opts.Budget}
			x.buf.presize(estFiles/int64(opts.Readers)+1, opts.Budget)
			err := x.run(ctx, batches)
			mu.Lock()
			defer mu.Unlock()
			res.Runs = append(res.Runs, x.runs...)
			files += x.files
			if err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	res.Files = files
	slices.Sort(res.Runs)
	if err := context.Cause(ctx); err != nil {
		return res, fmt.Errorf("inventory extract for site %d: %w", site, err)
	}
	return res, nil
}

// extractor is one reader: it queries batches of blocks and spools their
// files into sorted runs.
type extractor struct {
	d      *db.DB
	site   inventory.SiteID
	dir    string
	prefix string
	budget int
	buf    expBuffer
	runs   []string
	files  int64
	args   []any
}

func (x *extractor) run(ctx context.Context, batches <-chan []siteReplica) error {
	for batch := range batches {
		if err := x.read(ctx, batch); err != nil {
			return err
		}
		if x.buf.size() >= x.budget {
			if err := x.flush(); err != nil {
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return x.flush()
}

// read appends the files of one batch of blocks to the buffer.
func (x *extractor) read(ctx context.Context, batch []siteReplica) error {
	byBlock := make(map[int64]*siteReplica, len(batch))
	x.args = x.args[:0]
	open := false
	for i := range batch {
		byBlock[int64(batch[i].block)] = &batch[i]
		x.args = append(x.args, int64(batch[i].block))
		open = open || batch[i].open
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?,", len(batch)), ",") + ")"

	// Incomplete replicas list their present files; the rest are incoming.
	var present map[int64]struct{}
	if open {
		present = map[int64]struct{}{}
		rows, err := x.d.QueryContext(ctx, "SELECT file_id FROM block_replica_files WHERE site_id = ? AND block_id IN "+in,
			append([]any{int64(x.site)}, x.args...)...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			present[id] = struct{}{}
		}
		if err := closeRows(rows); err != nil {
			return err
		}
	}

	rows, err := x.d.QueryContext(ctx, "SELECT id, block_id, lfn, size, adler32 FROM files WHERE block_id IN "+in, x.args...)
	if err != nil {
		return err
	}
	var lfn, ck sql.RawBytes
	var id, block, size int64
	for rows.Next() {
		if err := rows.Scan(&id, &block, &lfn, &size, &ck); err != nil {
			rows.Close()
			return err
		}
		r := byBlock[block]
		state := r.state
		if r.open {
			if _, ok := present[id]; !ok {
				state = StateIncoming
			}
		}
		if err := x.buf.add(lfn, ck, size, id, int32(block), state, r.update); err != nil {
			rows.Close()
			return err
		}
		x.files++
	}
	return closeRows(rows)
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// flush sorts the buffer and writes it as a run.
func (x *extractor) flush() error {
	if len(x.buf.recs) == 0 {
		return nil
	}
	path := filepath.Join(x.dir, fmt.Sprintf("%s%06d.bin", x.prefix, len(x.runs)))
	if err := x.buf.writeSorted(path); err != nil {
		return err
	}
	x.runs = append(x.runs, path)
	x.buf.reset()
	return nil
}

// expBuffer holds expected files compactly: names and checksums in one
// arena, fixed-size entries pointing into it, so that buffering ten
// million files costs two allocations that grow, not twenty million.
type expBuffer struct {
	arena []byte
	recs  []expEntry
}

type expEntry struct {
	off     uint32
	nameLen uint16
	ckLen   uint8
	state   uint8
	block   int32
	size    int64
	fileID  int64
	update  int64
}

// expEntrySize is the in-memory size of an expEntry, for the budget.
const expEntrySize = 40

// presize allocates room for files records up to budget bytes, so that
// a large site does not pay for growing (and copying) the buffer.
func (b *expBuffer) presize(files int64, budget int) {
	const guessNameLen = 96
	n := min(files, int64(budget/(expEntrySize+guessNameLen)))
	b.recs = make([]expEntry, 0, n)
	b.arena = make([]byte, 0, n*guessNameLen)
}

func (b *expBuffer) size() int { return len(b.arena) + len(b.recs)*expEntrySize }

func (b *expBuffer) add(lfn, ck []byte, size, fileID int64, block int32, state uint8, update int64) error {
	if len(lfn) > 1<<16-1 || len(ck) > 255 {
		return fmt.Errorf("file %d: name or checksum too long", fileID)
	}
	if len(b.arena)+len(lfn)+len(ck) > 1<<32-1 {
		return errors.New("inventory extract: run buffer over 4 GiB; lower the budget")
	}
	b.recs = append(b.recs, expEntry{off: uint32(len(b.arena)), nameLen: uint16(len(lfn)), ckLen: uint8(len(ck)),
		state: state, block: block, size: size, fileID: fileID, update: update})
	b.arena = append(b.arena, lfn...)
	b.arena = append(b.arena, ck...)
	return nil
}

func (b *expBuffer) name(e *expEntry) []byte { return b.arena[e.off : e.off+uint32(e.nameLen)] }

func (b *expBuffer) writeSorted(path string) error {
	slices.SortFunc(b.recs, func(x, y expEntry) int { return bytes.Compare(b.name(&x), b.name(&y)) })
	w, err := createRecordFile(path + ".tmp")
	if err != nil {
		return fmt.Errorf("inventory extract: %w", err)
	}
	for i := range b.recs {
		e := &b.recs[i]
		end := e.off + uint32(e.nameLen)
		w.writeExpected(b.arena[e.off:end], b.arena[end:end+uint32(e.ckLen)], e.size, e.fileID, e.block, e.state, e.update)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("inventory extract: write %s: %w", path, err)
	}
	return os.Rename(path+".tmp", path)
}

func (b *expBuffer) reset() { b.arena, b.recs = b.arena[:0], b.recs[:0] }

// MergeExpected streams the runs of ExtractExpected as one sorted
// InventoryStream. When now is not nil, each record's replica state is
// brought up to date from it: the runs were extracted when the listing
// started, and a replica deleted, marked for deletion or updated since
// then must not make its files look missing.
func MergeExpected(runs []string, now *inventory.Snapshot, site inventory.SiteID) (InventoryStream, error) {
	srcs := make([]sortedSource[ExpRec], 0, len(runs))
	for _, p := range runs {
		s, err := openExpRun(p)
		if err != nil {
			for _, s := range srcs {
				s.Close()
			}
			return nil, fmt.Errorf("inventory runs: %w", err)
		}
		srcs = append(srcs, s)
	}
	m, err := mergeExpRuns(srcs)
	if err != nil {
		return nil, err
	}
	if now == nil {
		return m, nil
	}
	return newRefreshed(m, now, site), nil
}

// mergeExpRuns merges sorted expected-file sources; it owns srcs.
func mergeExpRuns(srcs []sortedSource[ExpRec]) (InventoryStream, error) {
	m, err := newKmerge(srcs, func(r *ExpRec) []byte { return r.LFN }, func(dst, src *ExpRec) {
		lfn, ck := append(dst.LFN[:0], src.LFN...), append(dst.Adler32[:0], src.Adler32...)
		*dst = *src
		dst.LFN, dst.Adler32 = lfn, ck
	})
	if err != nil {
		return nil, err // not m: a nil *kmerge in an interface is not nil
	}
	return m, nil
}

// refreshed re-reads each record's block replica state from a newer
// snapshot. Records come in name order, which jumps between blocks, so the
// site's replica states are looked up in a map made once.
type refreshed struct {
	InventoryStream
	now map[int32]replicaNow
}

type replicaNow struct {
	update            int64
	pending, complete bool
}

func newRefreshed(s InventoryStream, now *inventory.Snapshot, site inventory.SiteID) *refreshed {
	m := map[int32]replicaNow{}
	for br := range now.BlockReplicasAtSite(site) {
		m[int32(br.Block)] = replicaNow{update: br.LastUpdate, pending: br.PendingDeletion, complete: br.Complete}
	}
	return &refreshed{InventoryStream: s, now: m}
}

func (r *refreshed) Next() bool {
	if !r.InventoryStream.Next() {
		return false
	}
	e := r.InventoryStream.Rec()
	br, exists := r.now[e.BlockID]
	switch {
	case !exists || br.pending:
		// Gone or going since extraction: not expected any more. (Were it
		// still on the site, the next run reports it as an orphan.)
		e.State = StateDeleting
	case br.update != e.ReplicaUpdate:
		// Changed since extraction (files arrived, it completed): judged
		// by its new age, which is young.
		e.ReplicaUpdate = br.update
		if br.complete && e.State == StateIncoming {
			e.State = StatePresent
		}
	}
	return true
}

// expRun streams one sorted run file written by ExtractExpected.
type expRun struct {
	r   *recordReader
	rec ExpRec
}

func openExpRun(path string) (*expRun, error) {
	r, err := openRecordFile(path, runBufSize)
	if err != nil {
		return nil, err
	}
	return &expRun{r: r}, nil
}

func (s *expRun) Next() bool {
	r := s.r
	if r.atEOF() {
		return false
	}
	e := &s.rec
	r.name = r.nameInto(r.name)
	e.LFN = r.name
	e.Size = r.varint()
	r.ck = r.bytesInto(r.ck)
	e.Adler32 = r.ck
	e.FileID = r.varint()
	e.BlockID = int32(r.varint())
	e.State = uint8(r.varint())
	e.ReplicaUpdate = r.varint()
	return r.err == nil
}

func (s *expRun) Rec() *ExpRec { return &s.rec }
func (s *expRun) Err() error   { return s.r.err }
func (s *expRun) Close() error { return s.r.Close() }
