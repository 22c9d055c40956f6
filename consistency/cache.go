package consistency

// The inventory side is cached per site between runs. A 10M-file site's
// expected files take ~15 s of database reads on this class of machine,
// most of a run's CPU besides the listing, and from one weekly run to the
// next few of its blocks change. So each run keeps what it diffed against
// (a sorted record file and the blocks it covers, tagged with the change
// log's sequence number) and the next run re-reads from the database only
// the blocks the change log names since then, plus blocks new at the site;
// blocks gone from the site are dropped. The cache is trusted only when
// the change-log entry it was tagged with is still there, unchanged, and
// every entry since is accounted for: a restored or different database, a
// pruned log or a format change make the run read everything afresh.

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

const cacheVersion = 1

// cacheMeta describes a committed cache; it is written last, atomically.
type cacheMeta struct {
	Version  int      `json:"version"`
	Site     int32    `json:"site_id"`
	Seq      uint64   `json:"seq"`
	SeqAt    int64    `json:"seq_at"`   // the change at Seq: its time and kind,
	SeqKind  string   `json:"seq_kind"` // to recognise the same database
	Expected []string `json:"expected"` // sorted record files in the cache directory
	Blocks   string   `json:"blocks"`
	Files    int64    `json:"files"`
	Written  int64    `json:"written_at"`
}

// PrepareStats say how the inventory side of a run was obtained.
type PrepareStats struct {
	// Cold is set when no usable cache existed; Reason says why.
	Cold   bool   `json:"cold"`
	Reason string `json:"reason,omitempty"`
	// CachedBlocks were taken from the cache, ReadBlocks (ReadFiles files)
	// from the database.
	CachedBlocks int64 `json:"cached_blocks"`
	ReadBlocks   int64 `json:"read_blocks"`
	ReadFiles    int64 `json:"read_files"`
	// Changes is the number of change-log entries examined.
	Changes int64 `json:"changes"`
}

// PreparedExpected is the inventory side of one run, ready to stream:
// the still-valid part of the cache plus freshly read blocks. Open it
// once, diff, then Commit to make it the next run's cache.
type PreparedExpected struct {
	Stats PrepareStats

	cacheDir string
	site     inventory.SiteID
	cached   []string    // the cache's record files; none when cold
	keep     blockBitset // cached blocks still valid
	fresh    []string
	blocks   []inventory.BlockID // at the site in the snapshot
	seq      uint64
	seqAt    int64
	seqKind  string

	tee     *recordWriter
	teePath string
	files   int64
	open    InventoryStream
}

// PrepareExpected reads what the cache in cacheDir lacks for site as of
// snap into sorted runs under workDir. A missing or unusable cache reads
// everything (Stats.Cold).
func PrepareExpected(ctx context.Context, d *db.DB, snap *inventory.Snapshot, site inventory.SiteID, cacheDir, workDir string, opts ExtractOptions) (*PreparedExpected, error) {
	p := &PreparedExpected{cacheDir: cacheDir, site: site, seq: snap.Seq()}
	if p.seq > 0 {
		err := d.QueryRowContext(ctx, "SELECT at, kind FROM inventory_changes WHERE seq = ?", p.seq).Scan(&p.seqAt, &p.seqKind)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// The log lacks the snapshot's own last change: a cache tagged
			// with it could never be checked, so tag it unmatchable.
			p.seqAt, p.seqKind = -1, ""
		case err != nil:
			return nil, fmt.Errorf("inventory cache: change %d: %w", p.seq, err)
		}
	}
	reps := siteReplicas(snap, site)
	for _, r := range reps {
		p.blocks = append(p.blocks, r.block)
	}

	toRead := reps
	meta, cachedBlocks, reason := p.loadCache()
	var dirty map[inventory.BlockID]bool
	if reason == "" {
		var err error
		dirty, reason, err = changedBlocks(ctx, d, meta, p, &p.Stats)
		if err != nil {
			return nil, err
		}
	}
	if reason != "" {
		p.Stats.Cold, p.Stats.Reason = true, reason
	} else {
		for _, f := range meta.Expected {
			p.cached = append(p.cached, filepath.Join(cacheDir, f))
		}
		toRead = nil
		for _, r := range reps {
			if cachedBlocks.has(r.block) && !dirty[r.block] {
				p.keep.set(r.block)
				p.Stats.CachedBlocks++
			} else {
				toRead = append(toRead, r)
			}
		}
	}
	x, err := extractReplicas(ctx, d, toRead, site, workDir, opts)
	if err != nil {
		return nil, err
	}
	p.fresh = x.Runs
	p.Stats.ReadBlocks, p.Stats.ReadFiles = x.Blocks, x.Files
	return p, nil
}

// loadCache reads the cache's description; reason is why it cannot be
// used ("" when it can).
func (p *PreparedExpected) loadCache() (meta cacheMeta, blocks blockBitset, reason string) {
	b, err := os.ReadFile(filepath.Join(p.cacheDir, "meta.json"))
	if errors.Is(err, os.ErrNotExist) {
		return meta, blocks, "no cache yet"
	}
	if err == nil {
		err = json.Unmarshal(b, &meta)
	}
	switch {
	case err != nil:
		return meta, blocks, fmt.Sprintf("unreadable cache: %v", err)
	case meta.Version != cacheVersion:
		return meta, blocks, fmt.Sprintf("cache format %d, want %d", meta.Version, cacheVersion)
	case meta.Site != int32(p.site):
		return meta, blocks, fmt.Sprintf("cache is of site %d", meta.Site)
	case meta.Seq > p.seq:
		return meta, blocks, fmt.Sprintf("cache is of change %d, ahead of the inventory's %d (restored database?)", meta.Seq, p.seq)
	}
	ids, err := readBlockList(filepath.Join(p.cacheDir, meta.Blocks))
	if err != nil {
		return meta, blocks, fmt.Sprintf("unreadable cache: %v", err)
	}
	for _, f := range meta.Expected {
		if _, err := os.Stat(filepath.Join(p.cacheDir, f)); err != nil {
			return meta, blocks, fmt.Sprintf("unreadable cache: %v", err)
		}
	}
	for _, id := range ids {
		blocks.set(id)
	}
	return meta, blocks, ""
}

// changedBlocks returns the blocks whose files, or whose replica at the
// site, changed after the cache was written, from the change log.
func changedBlocks(ctx context.Context, d *db.DB, meta cacheMeta, p *PreparedExpected, st *PrepareStats) (map[inventory.BlockID]bool, string, error) {
	if meta.Seq > 0 {
		var at int64
		var kind string
		err := d.QueryRowContext(ctx, "SELECT at, kind FROM inventory_changes WHERE seq = ?", meta.Seq).Scan(&at, &kind)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, "", fmt.Errorf("inventory cache: %w", err)
		}
		if err != nil || at != meta.SeqAt || kind != meta.SeqKind {
			return nil, fmt.Sprintf("change %d is not the one the cache was written at (different or restored database)", meta.Seq), nil
		}
	}
	var n uint64
	if err := d.GetContext(ctx, &n, "SELECT COUNT(*) FROM inventory_changes WHERE seq > ? AND seq <= ?", meta.Seq, p.seq); err != nil {
		return nil, "", fmt.Errorf("inventory cache: %w", err)
	}
	if n != p.seq-meta.Seq {
		return nil, fmt.Sprintf("change log has %d of the %d changes since the cache", n, p.seq-meta.Seq), nil
	}
	st.Changes = int64(n)
	// Only these kinds name a block whose files or replica state may
	// differ; datasets deleted or gone from the site take their blocks off
	// the site, which the snapshot already says.
	rows, err := d.QueryContext(ctx, `SELECT kind, body FROM inventory_changes WHERE seq > ? AND seq <= ?
  AND kind IN ('upsert_block', 'delete_block', 'upsert_files', 'upsert_block_replica', 'delete_block_replica', 'set_replica_files')`, meta.Seq, p.seq)
	if err != nil {
		return nil, "", fmt.Errorf("inventory cache: %w", err)
	}
	defer rows.Close()
	dirty := map[inventory.BlockID]bool{}
	var kind string
	var body []byte
	for rows.Next() {
		if err := rows.Scan(&kind, &body); err != nil {
			return nil, "", err
		}
		// Only the ids are needed: decode them, not the file lists.
		var ids struct {
			ID    *inventory.BlockID `json:"id"`
			Block *inventory.BlockID `json:"block_id"`
			Site  *inventory.SiteID  `json:"site_id"`
		}
		if err := json.Unmarshal(body, &ids); err != nil {
			return nil, "", fmt.Errorf("inventory cache: change of kind %s: %w", kind, err)
		}
		switch {
		case kind == "upsert_block" || kind == "delete_block":
			if ids.ID == nil {
				return nil, "", fmt.Errorf("inventory cache: change of kind %s without id", kind)
			}
			dirty[*ids.ID] = true
		case ids.Block == nil:
			return nil, "", fmt.Errorf("inventory cache: change of kind %s without block_id", kind)
		case kind == "upsert_files" || ids.Site == nil || *ids.Site == p.site:
			dirty[*ids.Block] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	return dirty, "", nil
}

// Open streams the prepared inventory side in LFN order, with replica
// states refreshed from now (see MergeExpected). The next cache, which
// Commit installs, is the runs just read when the run was cold (the whole
// side is in them), else the stream itself, written as it passes.
func (p *PreparedExpected) Open(now *inventory.Snapshot) (InventoryStream, error) {
	if p.open != nil {
		return nil, errors.New("inventory cache: opened twice")
	}
	srcs := make([]sortedSource[ExpRec], 0, len(p.fresh)+len(p.cached))
	closeAll := func() {
		for _, s := range srcs {
			s.Close()
		}
	}
	for _, path := range p.cached {
		r, err := openExpRun(path)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("inventory cache: %w", err)
		}
		srcs = append(srcs, &keptRecords{expRun: r, keep: &p.keep, cacheDir: p.cacheDir})
	}
	for _, path := range p.fresh {
		r, err := openExpRun(path)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("inventory runs: %w", err)
		}
		srcs = append(srcs, r)
	}
	if len(p.cached) == 0 {
		m, err := mergeExpRuns(srcs)
		if err != nil {
			return nil, err
		}
		p.open = m
		return newRefreshed(m, now, p.site), nil
	}
	if err := os.MkdirAll(p.cacheDir, 0o755); err != nil {
		closeAll()
		return nil, fmt.Errorf("inventory cache: %w", err)
	}
	f, err := os.CreateTemp(p.cacheDir, "expected-*.tmp")
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("inventory cache: %w", err)
	}
	f.Close()
	p.teePath = f.Name()
	if p.tee, err = createRecordFile(p.teePath); err != nil {
		closeAll()
		return nil, fmt.Errorf("inventory cache: %w", err)
	}
	m, err := mergeExpRuns(srcs)
	if err != nil {
		p.Abandon()
		return nil, err
	}
	p.open = m
	return newRefreshed(&teeStream{InventoryStream: m, p: p}, now, p.site), nil
}

// teeStream writes every record it passes on into the next cache.
type teeStream struct {
	InventoryStream
	p *PreparedExpected
}

func (t *teeStream) Next() bool {
	if !t.InventoryStream.Next() {
		return false
	}
	e := t.InventoryStream.Rec()
	t.p.tee.writeExpected(e.LFN, e.Adler32, e.Size, e.FileID, e.BlockID, e.State, e.ReplicaUpdate)
	t.p.files++
	return true
}

// keptRecords passes on the cached records of still-valid blocks. A cache
// file that does not decode fails the run and is forgotten, so that the
// next run reads everything rather than failing on it again.
type keptRecords struct {
	*expRun
	keep     *blockBitset
	cacheDir string
}

func (k *keptRecords) Next() bool {
	for k.expRun.Next() {
		if k.keep.has(inventory.BlockID(k.rec.BlockID)) {
			return true
		}
	}
	if k.Err() != nil {
		os.Remove(filepath.Join(k.cacheDir, "meta.json"))
	}
	return false
}

// Commit installs what the stream yielded as the cache for the next run.
// Call it only after the stream was read to its end without error.
func (p *PreparedExpected) Commit() error {
	if p.open == nil {
		return errors.New("inventory cache: nothing to commit (not opened)")
	}
	gen := fmt.Sprintf("%d-%d", p.seq, time.Now().UnixNano())
	meta := cacheMeta{Version: cacheVersion, Site: int32(p.site), Seq: p.seq, SeqAt: p.seqAt, SeqKind: p.seqKind,
		Blocks: "blocks-" + gen + ".bin", Written: time.Now().Unix()}
	if err := os.MkdirAll(p.cacheDir, 0o755); err != nil {
		return fmt.Errorf("inventory cache: %w", err)
	}
	// Either the tee'd stream or, for a cold run, its runs become the cache.
	from := p.fresh
	meta.Files = p.Stats.ReadFiles
	if p.tee != nil {
		err := p.tee.Close()
		p.tee = nil
		if err != nil {
			os.Remove(p.teePath)
			return fmt.Errorf("inventory cache: %w", err)
		}
		from, meta.Files = []string{p.teePath}, p.files
	}
	for i, path := range from {
		name := fmt.Sprintf("expected-%s-%03d.bin", gen, i)
		if err := os.Rename(path, filepath.Join(p.cacheDir, name)); err != nil {
			return fmt.Errorf("inventory cache: %w", err)
		}
		meta.Expected = append(meta.Expected, name)
	}
	p.fresh = nil
	if err := writeBlockList(filepath.Join(p.cacheDir, meta.Blocks), p.blocks); err != nil {
		return fmt.Errorf("inventory cache: %w", err)
	}
	b, _ := json.MarshalIndent(meta, "", "  ")
	if err := writeFileAtomic(filepath.Join(p.cacheDir, "meta.json"), b); err != nil {
		return fmt.Errorf("inventory cache: %w", err)
	}
	// The files of earlier generations are garbage now (temporary files of
	// a concurrent writer end in .tmp and are left alone).
	entries, _ := os.ReadDir(p.cacheDir)
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".bin") && !slices.Contains(meta.Expected, n) && n != meta.Blocks {
			os.Remove(filepath.Join(p.cacheDir, n))
		}
	}
	return nil
}

// Abandon drops the partly written next cache (the run failed).
func (p *PreparedExpected) Abandon() {
	if p.tee != nil {
		p.tee.f.Close()
		p.tee = nil
		os.Remove(p.teePath)
	}
}

// blockBitset is a set of block ids (dense small integers).
type blockBitset struct{ w []uint64 }

func (b *blockBitset) set(id inventory.BlockID) {
	i := int(id) >> 6
	if i >= len(b.w) {
		b.w = slices.Grow(b.w, i+1-len(b.w))[:i+1]
	}
	b.w[i] |= 1 << (uint(id) & 63)
}

func (b *blockBitset) has(id inventory.BlockID) bool {
	i := int(id) >> 6
	return id >= 0 && i < len(b.w) && b.w[i]&(1<<(uint(id)&63)) != 0
}

func writeBlockList(path string, ids []inventory.BlockID) error {
	buf := make([]byte, 0, 4*len(ids))
	for _, id := range ids {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(id))
	}
	return writeFileAtomic(path, buf)
}

func readBlockList(path string) ([]inventory.BlockID, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%s: %w: length %d", path, errCorrupt, len(b))
	}
	ids := make([]inventory.BlockID, len(b)/4)
	for i := range ids {
		ids[i] = inventory.BlockID(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return ids, nil
}

// writeFileAtomic writes data to path through a synced temporary file and
// a rename, so that a crash leaves the old or the new content.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
