package consistency

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// siteFilesQuery lists every file of every block replica at a site in LFN
// order. The order is byte order on both dialects (files.lfn is ascii_bin
// on MySQL, BINARY on SQLite), the same order the spool sorts the listing
// in; the databases stream it from the files.lfn unique index probing
// block_replicas by primary key, so neither side holds the result.
const siteFilesQuery = `SELECT f.lfn, f.size, f.adler32, f.id, f.block_id, br.flags, br.is_complete, br.last_update,
  CASE WHEN rf.file_id IS NULL THEN 0 ELSE 1 END
FROM files f
JOIN block_replicas br ON br.block_id = f.block_id AND br.site_id = ?
LEFT JOIN block_replica_files rf ON rf.block_id = f.block_id AND rf.site_id = br.site_id AND rf.file_id = f.id
ORDER BY f.lfn`

// flagPendingDeletion is bit 1 of block_replicas.flags (inventory schema).
const flagPendingDeletion = 2

// OpenInventoryStream streams the files the inventory places at site from
// the database, sorted by LFN. Close releases the connection.
func OpenInventoryStream(ctx context.Context, d *db.DB, site inventory.SiteID) (InventoryStream, error) {
	rows, err := d.QueryContext(ctx, siteFilesQuery, site)
	if err != nil {
		return nil, fmt.Errorf("inventory stream for site %d: %w", site, err)
	}
	return &dbStream{rows: rows}, nil
}

type dbStream struct {
	rows *sql.Rows
	rec  ExpRec
	err  error
}

func (s *dbStream) Next() bool {
	if s.err != nil || !s.rows.Next() {
		return false
	}
	var lfn, ck sql.RawBytes
	var flags, complete, listed int
	var block int64
	r := &s.rec
	if err := s.rows.Scan(&lfn, &r.Size, &ck, &r.FileID, &block, &flags, &complete, &r.ReplicaUpdate, &listed); err != nil {
		s.err = err
		return false
	}
	// RawBytes are only valid until the next Next: copy into our buffers.
	r.LFN = append(r.LFN[:0], lfn...)
	r.Adler32 = append(r.Adler32[:0], ck...)
	r.BlockID = int32(block)
	switch {
	case flags&flagPendingDeletion != 0:
		r.State = StateDeleting
	case complete == 0 && listed == 0:
		r.State = StateIncoming
	default:
		r.State = StatePresent
	}
	return true
}

func (s *dbStream) Rec() *ExpRec { return &s.rec }

func (s *dbStream) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.rows.Err()
}

func (s *dbStream) Close() error { return s.rows.Close() }

// WriteInventoryDump writes expected files (which must be sorted by LFN)
// to a dump file that OpenInventoryDump streams back; used by the
// benchmark and by tools that diff against a saved inventory.
func WriteInventoryDump(path string, files func(yield func(*ExpectedFile) bool)) error {
	w, err := createRecordFile(path)
	if err != nil {
		return err
	}
	for e := range files {
		w.WriteExpected(e)
	}
	return w.Close()
}

// OpenInventoryDump streams a file written by WriteInventoryDump.
func OpenInventoryDump(path string) (InventoryStream, error) {
	r, err := openRecordFile(path, 1<<20)
	if err != nil {
		return nil, err
	}
	return &dumpStream{r: r}, nil
}

type dumpStream struct {
	r   *recordReader
	rec ExpRec
}

func (s *dumpStream) Next() bool {
	r := s.r
	if r.atEOF() {
		return false
	}
	e := &s.rec
	r.name = r.bytesInto(r.name)
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

func (s *dumpStream) Rec() *ExpRec { return &s.rec }
func (s *dumpStream) Err() error   { return s.r.err }
func (s *dumpStream) Close() error { return s.r.Close() }
