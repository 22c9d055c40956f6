package inventory

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/db"
)

// Persisting a write. One statement per row made a large injection cost a
// statement parse and a round trip per row (and three or four rows per
// update with the change log and side effects), so the writer groups the
// updates of a write into multi-row statements instead. Grouping reorders
// updates by kind (sites, then datasets, then blocks, ...), which is only
// sound while the reordered updates commute in the database; persistAll
// keeps the original order wherever they might not:
//   - deletions are written one by one, in place, and no upsert moves
//     across one;
//   - an upsert of a block does not move ahead of a replica of that block
//     written before it (the block's size is copied into its complete
//     replicas' rows);
//   - an upsert of a replica does not move ahead of file rows of that
//     replica written before it (a complete replica drops its file rows).
// The side-effect statements (that copy and that drop) are skipped when
// the database cannot hold rows for them to change: the writer's state
// before the write mirrors the database, and persister remembers what
// this write added.

// rowsPerStatement bounds a multi-row statement: 500 rows of at most 8
// columns stay far below SQLite's and MariaDB's placeholder limits.
const rowsPerStatement = 500

// maxStatementBytes bounds the text a multi-row statement carries (change
// log bodies of large file lists), below MariaDB's default packet limit.
const maxStatementBytes = 4 << 20

// progressEvery is how many persisted updates pass between reports.
const progressEvery = 10_000

// persister writes one write's updates inside its database transaction.
// A new one is made for every attempt of the transaction.
type persister struct {
	ctx context.Context
	tx  *sqlx.Tx
	d   *db.DB
	st  *state // the writer's state before this write: what the database held

	firstNewFile  FileID               // ids from here on were allocated by this write
	replicaBlocks map[BlockID]bool     // blocks this write gave a replica row
	replicaFiles  map[[2]int32]bool    // (block, site) this write gave file rows
	progress      func(Progress)       // nil: nobody asked
	done, total   int                  // updates persisted, and all of them
	reported      int                  // done at the last report
	stmts         map[sqlKey]*sql.Stmt // prepared multi-row statements by shape
}

type sqlKey struct {
	table string
	rows  int
}

func newPersister(ctx context.Context, tx *sqlx.Tx, d *db.DB, st *state, firstNewFile FileID, total int, progress func(Progress)) *persister {
	return &persister{ctx: ctx, tx: tx, d: d, st: st, firstNewFile: firstNewFile,
		replicaBlocks: map[BlockID]bool{}, replicaFiles: map[[2]int32]bool{},
		progress: progress, total: total, stmts: map[sqlKey]*sql.Stmt{}}
}

// close releases the prepared statements.
func (p *persister) close() {
	for _, st := range p.stmts {
		st.Close()
	}
}

func (p *persister) advance(n int) {
	p.done += n
	if p.progress != nil && (p.done-p.reported >= progressEvery || p.done == p.total && p.reported != p.done) {
		p.reported = p.done
		p.progress(Progress{Phase: "write", Done: p.done, Total: p.total})
	}
}

// The write order of the kinds that can be grouped: parents first. Kinds
// not listed (deletions) are never grouped.
func rankOf(u Update) int {
	switch u.(type) {
	case UpsertSite:
		return 0
	case UpsertGroup:
		return 1
	case UpsertPartition:
		return 2
	case SetQuota:
		return 3
	case UpsertDataset:
		return 4
	case UpsertBlock:
		return 5
	case UpsertFiles:
		return 6
	case UpsertDatasetReplica:
		return 7
	case UpsertBlockReplica:
		return 8
	case SetReplicaFiles:
		return 9
	}
	return -1
}

const numRanks = 10

// persistAll writes every update: deletions one by one in place, runs of
// upserts grouped by kind (see the comment at the top of this file).
func (p *persister) persistAll(us []Update) error {
	for i := 0; i < len(us); {
		if rankOf(us[i]) < 0 {
			if err := us[i].persist(p.ctx, p.tx, p.d); err != nil {
				return fmt.Errorf("write %s: %w", us[i].Kind(), err)
			}
			p.advance(1)
			i++
			continue
		}
		j := segmentEnd(us, i)
		if err := p.persistSegment(us[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// segmentEnd returns the end of the run of upserts starting at i that may
// be grouped by kind.
func segmentEnd(us []Update, i int) int {
	withReplica := map[BlockID]bool{}
	withFiles := map[[2]int32]bool{}
	for ; i < len(us); i++ {
		switch v := us[i].(type) {
		case UpsertBlock:
			if withReplica[v.ID] {
				return i
			}
		case UpsertBlockReplica:
			if withFiles[[2]int32{int32(v.Block), int32(v.Site)}] {
				return i
			}
			withReplica[v.Block] = true
		case SetReplicaFiles:
			withFiles[[2]int32{int32(v.Block), int32(v.Site)}] = true
		default:
			if rankOf(v) < 0 {
				return i
			}
		}
	}
	return i
}

func (p *persister) persistSegment(us []Update) error {
	var byRank [numRanks][]Update
	for _, u := range us {
		r := rankOf(u)
		byRank[r] = append(byRank[r], u)
	}
	for _, group := range byRank {
		if len(group) == 0 {
			continue
		}
		var err error
		switch group[0].(type) {
		case UpsertDataset:
			err = p.datasets(group)
		case UpsertBlock:
			err = p.blocks(group)
		case UpsertFiles:
			err = p.files(group)
		case UpsertDatasetReplica:
			err = p.datasetReplicas(group)
		case UpsertBlockReplica:
			err = p.blockReplicas(group)
		case SetReplicaFiles:
			err = p.replicaFileRows(group)
		default: // few per write: one statement each
			for _, u := range group {
				if err = u.persist(p.ctx, p.tx, p.d); err != nil {
					err = fmt.Errorf("write %s: %w", u.Kind(), err)
					break
				}
				p.advance(1)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// rows collects the rows of one multi-row statement.
type rows struct {
	p                 *persister
	kind              string // the update kind, for errors
	table             string
	cols, key, update []string
	plain             bool // INSERT, failing on a duplicate key
	args              []any
	n, bytes, covers  int
}

func (p *persister) rows(kind, table string, cols, key, update []string) *rows {
	return &rows{p: p, kind: kind, table: table, cols: cols, key: key, update: update}
}

// add buffers one row; covers is the number of updates completely written
// once this row is (for progress).
func (r *rows) add(covers int, vals ...any) error {
	r.args = append(r.args, vals...)
	for _, v := range vals {
		if s, ok := v.(string); ok {
			r.bytes += len(s)
		}
	}
	r.n++
	r.covers += covers
	if r.n == rowsPerStatement || r.bytes >= maxStatementBytes {
		return r.flush()
	}
	return nil
}

func (r *rows) flush() error {
	if r.n == 0 {
		return nil
	}
	// Full-size statements repeat: prepare each shape once per write, so
	// the database parses it once rather than per 500 rows.
	k := sqlKey{r.table, r.n}
	st, ok := r.p.stmts[k]
	if !ok {
		var q string
		if r.plain {
			row := "(" + strings.TrimSuffix(strings.Repeat("?,", len(r.cols)), ",") + ")"
			q = "INSERT INTO " + r.table + " (" + strings.Join(r.cols, ",") + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+",", r.n), ",")
		} else {
			q = r.p.d.UpsertRows(r.table, r.cols, r.key, r.update, r.n)
		}
		var err error
		if st, err = r.p.tx.PrepareContext(r.p.ctx, q); err != nil {
			return fmt.Errorf("write %s: %w", r.kind, err)
		}
		r.p.stmts[k] = st
	}
	if _, err := st.ExecContext(r.p.ctx, r.args...); err != nil {
		return fmt.Errorf("write %s: %w", r.kind, err)
	}
	r.p.advance(r.covers)
	r.args, r.n, r.bytes, r.covers = r.args[:0], 0, 0, 0
	return nil
}

// changeLog writes the change-log rows of the write; a row already there
// means another writer got ahead of this one.
func (p *persister) changeLog(first uint64, at int64, us []Update, bodies [][]byte) error {
	r := p.rows("change log", "inventory_changes", []string{"seq", "at", "kind", "body"}, nil, nil)
	r.plain = true
	for i, u := range us {
		if err := r.add(0, first+uint64(i), at, u.Kind(), string(bodies[i])); err != nil {
			return p.changeLogError(err, first, len(us))
		}
	}
	if err := r.flush(); err != nil {
		return p.changeLogError(err, first, len(us))
	}
	return nil
}

func (p *persister) changeLogError(err error, first uint64, n int) error {
	if db.IsDuplicate(err) {
		return fmt.Errorf("change log seq %d..%d: already written: %w (%v)", first, first+uint64(n)-1, ErrStale, err)
	}
	return err
}

func (p *persister) datasets(us []Update) error {
	r := p.rows("upsert_dataset", "datasets",
		[]string{"id", "name", "status", "data_type", "software_version", "last_update", "is_open"}, []string{"id"},
		[]string{"status", "data_type", "software_version", "last_update", "is_open"})
	for _, u := range us {
		v := u.(UpsertDataset)
		if err := r.add(1, v.ID, v.Name, v.Status.String(), v.DataType.String(), v.SoftwareVersion, v.LastUpdate, b2i(v.Open)); err != nil {
			return err
		}
	}
	return r.flush()
}

// mayHaveReplicaRows reports whether the database may hold replica rows of
// block b at this point of the write.
func (p *persister) mayHaveReplicaRows(b BlockID) bool {
	if p.replicaBlocks[b] {
		return true
	}
	return int32(b) < p.st.blocks.len() && p.st.blocks.at(int32(b)).repHead != 0
}

func (p *persister) blocks(us []Update) error {
	r := p.rows("upsert_block", "blocks",
		[]string{"id", "dataset_id", "name", "size", "num_files", "is_open", "last_update"}, []string{"id"},
		[]string{"size", "num_files", "is_open", "last_update"})
	var resize []UpsertBlock
	for _, u := range us {
		v := u.(UpsertBlock)
		if err := r.add(1, v.ID, v.Dataset, v.Name, v.Size, v.NumFiles, b2i(v.Open), v.LastUpdate); err != nil {
			return err
		}
		if p.mayHaveReplicaRows(v.ID) {
			resize = append(resize, v)
		}
	}
	if err := r.flush(); err != nil {
		return err
	}
	// Complete replicas carry the block's size in the database too.
	for _, v := range resize {
		if _, err := p.tx.ExecContext(p.ctx, "UPDATE block_replicas SET size = ?, num_files = ? WHERE block_id = ? AND is_complete = 1",
			v.Size, v.NumFiles, v.ID); err != nil {
			return fmt.Errorf("write upsert_block: %w", err)
		}
	}
	return nil
}

// files inserts the files this write allocated ids for in multi-row
// statements and updates the others one by one (see UpsertFiles.persist
// for why that is not an upsert).
func (p *persister) files(us []Update) error {
	r := p.rows("upsert_files", "files", []string{"id", "block_id", "lfn", "size", "adler32"}, nil, nil)
	r.plain = true
	for _, u := range us {
		v := u.(UpsertFiles)
		var old []File
		for i, f := range v.Files {
			if f.ID < p.firstNewFile {
				old = append(old, f)
				continue
			}
			covers := 0
			if i == len(v.Files)-1 {
				covers = 1
			}
			if err := r.add(covers, f.ID, v.Block, f.LFN, f.Size, f.Adler32); err != nil {
				return p.nameFailedFile(err, r)
			}
		}
		if len(old) > 0 {
			if err := (UpsertFiles{Block: v.Block, Files: old}).persist(p.ctx, p.tx, p.d); err != nil {
				return fmt.Errorf("write upsert_files: %w", err)
			}
		}
		if len(v.Files) == 0 || v.Files[len(v.Files)-1].ID < p.firstNewFile {
			p.advance(1)
		}
	}
	if err := r.flush(); err != nil {
		return p.nameFailedFile(err, r)
	}
	return nil
}

// nameFailedFile retries a failed multi-row file insert one row at a time
// to say which file failed (a failed statement changes nothing, on both
// dialects), so that the error names an LFN rather than a batch.
func (p *persister) nameFailedFile(err error, r *rows) error {
	args := r.args
	for len(args) >= 5 {
		if _, e := p.tx.ExecContext(p.ctx, "INSERT INTO files (id, block_id, lfn, size, adler32) VALUES (?, ?, ?, ?, ?)", args[:5]...); e != nil {
			return fmt.Errorf("write upsert_files: file %v: %w", args[2], e)
		}
		args = args[5:]
	}
	return err
}

func (p *persister) datasetReplicas(us []Update) error {
	r := p.rows("upsert_dataset_replica", "dataset_replicas", []string{"dataset_id", "site_id", "growing", "group_id"},
		[]string{"dataset_id", "site_id"}, []string{"growing", "group_id"})
	for _, u := range us {
		v := u.(UpsertDatasetReplica)
		if err := r.add(1, v.Dataset, v.Site, b2i(v.Growing), v.Group); err != nil {
			return err
		}
	}
	return r.flush()
}

// mayHaveFileRows reports whether the database may hold file rows of the
// replica of block b at site at this point of the write.
func (p *persister) mayHaveFileRows(b BlockID, site SiteID) bool {
	if p.replicaFiles[[2]int32{int32(b), int32(site)}] {
		return true
	}
	return int32(b) < p.st.blocks.len() && p.st.findReplica(b, site) != 0
}

func (p *persister) blockReplicas(us []Update) error {
	r := p.rows("upsert_block_replica", "block_replicas",
		[]string{"block_id", "site_id", "group_id", "flags", "is_complete", "size", "num_files", "last_update"},
		[]string{"block_id", "site_id"}, []string{"group_id", "flags", "is_complete", "size", "num_files", "last_update"})
	var dropFiles []UpsertBlockReplica
	for _, u := range us {
		v := u.(UpsertBlockReplica)
		flags := 0
		if v.Custodial {
			flags |= 1
		}
		if v.PendingDeletion {
			flags |= 2
		}
		if v.Suspicious {
			flags |= 4
		}
		if err := r.add(1, v.Block, v.Site, v.Group, flags, b2i(v.Complete), v.Size, v.NumFiles, v.LastUpdate); err != nil {
			return err
		}
		if v.Complete && p.mayHaveFileRows(v.Block, v.Site) {
			dropFiles = append(dropFiles, v)
		}
		p.replicaBlocks[v.Block] = true
	}
	if err := r.flush(); err != nil {
		return err
	}
	// A complete replica holds every file: its file list goes.
	for _, v := range dropFiles {
		if _, err := p.tx.ExecContext(p.ctx, "DELETE FROM block_replica_files WHERE block_id = ? AND site_id = ?", v.Block, v.Site); err != nil {
			return fmt.Errorf("write upsert_block_replica: %w", err)
		}
	}
	return nil
}

func (p *persister) replicaFileRows(us []Update) error {
	r := p.rows("set_replica_files", "block_replica_files", []string{"block_id", "site_id", "file_id"},
		[]string{"block_id", "site_id", "file_id"}, nil)
	for _, u := range us {
		v := u.(SetReplicaFiles)
		p.replicaFiles[[2]int32{int32(v.Block), int32(v.Site)}] = true
		for i, f := range v.Add {
			covers := 0
			if i == len(v.Add)-1 && len(v.Remove) == 0 {
				covers = 1
			}
			if err := r.add(covers, v.Block, v.Site, f); err != nil {
				return err
			}
		}
		if len(v.Remove) > 0 || len(v.Add) == 0 {
			// Removals are rare (a transfer never loses files): row by row,
			// after the additions so far.
			if err := r.flush(); err != nil {
				return err
			}
			if err := (SetReplicaFiles{Block: v.Block, Site: v.Site, Remove: v.Remove}).persist(p.ctx, p.tx, p.d); err != nil {
				return fmt.Errorf("write set_replica_files: %w", err)
			}
			p.advance(1)
		}
	}
	return r.flush()
}
