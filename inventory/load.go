package inventory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
)

// Load reads the inventory (everything but files) from the database into a
// new Store, with the given partition definitions (DefaultPartitions when
// nil). Large tables are streamed: a reader goroutine scans rows into
// batches while this goroutine builds the in-memory state, so loading takes
// little longer than reading the rows.
func Load(ctx context.Context, d *db.DB, log *logrus.Entry, defs []PartitionDef, at time.Time) (*Store, error) {
	if defs == nil {
		defs = DefaultPartitions()
	}
	s := &Store{db: d, log: log, w: newState(), names: newNames(), nextFile: 1}
	st := s.w
	if err := d.GetContext(ctx, &st.seq, "SELECT COALESCE(MAX(seq), 0) FROM inventory_changes"); err != nil {
		return nil, fmt.Errorf("load change log: %w", err)
	}
	var maxFile int64
	if err := d.GetContext(ctx, &maxFile, "SELECT COALESCE(MAX(id), 0) FROM files"); err != nil {
		return nil, fmt.Errorf("load files: %w", err)
	}
	s.nextFile = FileID(maxFile + 1)
	if err := s.loadSmall(ctx); err != nil {
		return nil, err
	}
	if err := s.SetPartitions(ctx, at, defs); err != nil {
		return nil, fmt.Errorf("partitions: %w", err)
	}
	if err := s.loadQuotas(ctx); err != nil {
		return nil, err
	}
	// The load allocates its whole working set at once and keeps it: let
	// the heap grow more between collections while it runs.
	old := debug.SetGCPercent(400)
	err := loadLarge(ctx, d, st, s.names, true)
	debug.SetGCPercent(old)
	if err != nil {
		return nil, err
	}
	s.names.datasetOrder() // sorted once here, so no request pays for it
	return s, nil
}

// StreamOnly reads the same rows Load reads from the large tables, in the
// same way, and builds nothing: the baseline of the load benchmark.
func StreamOnly(ctx context.Context, d *db.DB) error {
	return loadLarge(ctx, d, newState(), newNames(), false)
}

func (s *Store) loadSmall(ctx context.Context) error {
	st, n := s.w, s.names
	var sites []struct {
		ID      SiteID `db:"id"`
		Name    string `db:"name"`
		Host    string `db:"host"`
		Type    string `db:"storage_type"`
		Backend string `db:"backend"`
		Status  string `db:"status"`
	}
	if err := s.db.SelectContext(ctx, &sites, "SELECT id, name, host, storage_type, backend, status FROM sites ORDER BY id"); err != nil {
		return fmt.Errorf("load sites: %w", err)
	}
	for _, r := range sites {
		typ, err := ParseStorageType(r.Type)
		if err != nil {
			return fmt.Errorf("load site %s: %w", r.Name, err)
		}
		status, err := ParseSiteStatus(r.Status)
		if err != nil {
			return fmt.Errorf("load site %s: %w", r.Name, err)
		}
		n.addSite(r.Name, r.ID)
		st.putSite(r.ID, Site{ID: r.ID, Name: r.Name, Host: r.Host, StorageType: typ, Backend: r.Backend, Status: status})
	}
	var groups []struct {
		ID    GroupID `db:"id"`
		Name  string  `db:"name"`
		Level string  `db:"olevel"`
	}
	if err := s.db.SelectContext(ctx, &groups, "SELECT id, name, olevel FROM owner_groups ORDER BY id"); err != nil {
		return fmt.Errorf("load groups: %w", err)
	}
	for _, r := range groups {
		lvl, err := ParseOwnershipLevel(r.Level)
		if err != nil {
			return fmt.Errorf("load group %s: %w", r.Name, err)
		}
		n.addGroup(r.Name, r.ID)
		st.putGroup(r.ID, Group{ID: r.ID, Name: r.Name, Level: lvl})
	}
	var parts []Partition
	if err := s.db.SelectContext(ctx, &parts, "SELECT id, name FROM partitions ORDER BY id"); err != nil {
		return fmt.Errorf("load partitions: %w", err)
	}
	for _, p := range parts {
		UpsertPartition{p}.apply(st, n)
	}
	return nil
}

func (s *Store) loadQuotas(ctx context.Context) error {
	var quotas []SetQuota
	if err := s.db.SelectContext(ctx, &quotas, "SELECT site_id AS site, partition_id AS `partition`, quota AS bytes FROM quotas"); err != nil {
		return fmt.Errorf("load quotas: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range quotas {
		if int(q.Site) < len(s.w.sites) && s.w.sites[q.Site].exists && int(q.Partition) < len(s.w.parts) {
			s.w.setQuota(q.Site, q.Partition, q.Bytes)
		}
	}
	return nil
}

const loadBatch = 8192

// stream runs query in a goroutine, scanning rows into batches of R that
// it hands to consume in this goroutine. Batches are recycled.
func stream[R any](ctx context.Context, d *db.DB, query string, scan func(*sql.Rows, *R) error, consume func([]R) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	full := make(chan []R, 4)
	free := make(chan []R, 6)
	for i := 0; i < 6; i++ {
		free <- make([]R, 0, loadBatch)
	}
	errc := make(chan error, 1)
	go func() {
		defer close(full)
		errc <- func() error {
			// A prepared statement makes MySQL use the binary protocol, in
			// which integers arrive as integers instead of text to parse.
			stmt, err := d.PrepareContext(ctx, query)
			if err != nil {
				return err
			}
			defer stmt.Close()
			rows, err := stmt.QueryContext(ctx)
			if err != nil {
				return err
			}
			defer rows.Close()
			batch := (<-free)[:0]
			for rows.Next() {
				batch = batch[:len(batch)+1]
				if err := scan(rows, &batch[len(batch)-1]); err != nil {
					return err
				}
				if len(batch) == cap(batch) {
					select {
					case full <- batch:
					case <-ctx.Done():
						return ctx.Err()
					}
					batch = (<-free)[:0]
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if len(batch) > 0 {
				full <- batch
			}
			return nil
		}()
	}()
	var cerr error
	for b := range full {
		if cerr == nil {
			cerr = consume(b)
			if cerr != nil {
				cancel()
			}
		}
		free <- b
	}
	if err := <-errc; err != nil && cerr == nil {
		return err
	}
	return cerr
}

// intCol scans an integer column without reflection. database/sql
// converts a driver's int64 into an *int64 through reflect (convertAssign
// has no fast path for it), which was a quarter of the loader's CPU on
// 10 M block replicas; a Scanner is called before that path. It accepts
// what the MySQL and SQLite drivers return for integer columns, and like
// *int64 it refuses NULL.
type intCol int64

func (c *intCol) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*c = intCol(v)
	case uint64:
		if v > math.MaxInt64 {
			return fmt.Errorf("integer %d out of range", v)
		}
		*c = intCol(v)
	case bool:
		*c = 0
		if v {
			*c = 1
		}
	case []byte:
		return c.parse(string(v))
	case string:
		return c.parse(v)
	case nil:
		return errors.New("NULL where an integer is required")
	default:
		return fmt.Errorf("%T where an integer is required", src)
	}
	return nil
}

func (c *intCol) parse(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q where an integer is required", s)
	}
	*c = intCol(n)
	return nil
}

type datasetRow struct {
	id, lastUpdate, open int64
	name, status, dtype  string
	sw                   string
}

type blockRow struct {
	id, ds, size, nfiles, open, lastUpdate int64
	name                                   []byte // reused across batches: no allocation per row
	raw                                    sql.RawBytes
}

type dsReplicaRow struct{ ds, site, growing, group int64 }

type replicaRow struct{ block, site, group, flags, complete, size, nfiles, lastUpdate int64 }

// loadLarge streams datasets, blocks and replicas; with build false it only
// scans them (the benchmark's baseline).
func loadLarge(ctx context.Context, d *db.DB, st *state, n *names, build bool) error {
	err := stream(ctx, d, "SELECT id, name, status, data_type, software_version, last_update, is_open FROM datasets",
		func(r *sql.Rows, v *datasetRow) error {
			return r.Scan((*intCol)(&v.id), &v.name, &v.status, &v.dtype, &v.sw, (*intCol)(&v.lastUpdate), (*intCol)(&v.open))
		},
		func(rows []datasetRow) error {
			if !build {
				return nil
			}
			for _, r := range rows {
				status, err := ParseDatasetStatus(r.status)
				if err != nil {
					return fmt.Errorf("dataset %s: %w", r.name, err)
				}
				dt, err := ParseDataType(r.dtype)
				if err != nil {
					return fmt.Errorf("dataset %s: %w", r.name, err)
				}
				n.putDataset(r.name, DatasetID(r.id))
				st.putDataset(DatasetID(r.id), Dataset{Name: r.name, Status: status, DataType: dt, LastUpdate: r.lastUpdate, Open: r.open != 0}, n.software(r.sw))
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("load datasets: %w", err)
	}
	err = stream(ctx, d, "SELECT id, dataset_id, name, size, num_files, is_open, last_update FROM blocks",
		func(r *sql.Rows, v *blockRow) error {
			if err := r.Scan((*intCol)(&v.id), (*intCol)(&v.ds), &v.raw, (*intCol)(&v.size), (*intCol)(&v.nfiles), (*intCol)(&v.open), (*intCol)(&v.lastUpdate)); err != nil {
				return err
			}
			v.name = append(v.name[:0], v.raw...)
			return nil
		},
		func(rows []blockRow) error {
			if !build {
				return nil
			}
			for _, r := range rows {
				if r.ds <= 0 || int32(r.ds) >= st.datasets.len() || st.datasets.at(int32(r.ds)).flags&flagExists == 0 {
					return fmt.Errorf("block %d (%s) refers to missing dataset %d", r.id, r.name, r.ds)
				}
				st.putBlockBytes(BlockID(r.id), DatasetID(r.ds), r.name, r.size, int32(r.nfiles), r.open != 0, r.lastUpdate)
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("load blocks: %w", err)
	}
	err = stream(ctx, d, "SELECT dataset_id, site_id, growing, group_id FROM dataset_replicas",
		func(r *sql.Rows, v *dsReplicaRow) error {
			return r.Scan((*intCol)(&v.ds), (*intCol)(&v.site), (*intCol)(&v.growing), (*intCol)(&v.group))
		},
		func(rows []dsReplicaRow) error {
			if !build {
				return nil
			}
			for _, r := range rows {
				if err := st.checkRefs(0, r.ds, r.site, r.group); err != nil {
					return fmt.Errorf("dataset replica (%d, %d): %w", r.ds, r.site, err)
				}
				st.putDSReplica(DatasetReplica{Dataset: DatasetID(r.ds), Site: SiteID(r.site), Growing: r.growing != 0, Group: GroupID(r.group)})
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("load dataset replicas: %w", err)
	}
	err = stream(ctx, d, "SELECT block_id, site_id, group_id, flags, is_complete, size, num_files, last_update FROM block_replicas",
		func(r *sql.Rows, v *replicaRow) error {
			return r.Scan((*intCol)(&v.block), (*intCol)(&v.site), (*intCol)(&v.group), (*intCol)(&v.flags), (*intCol)(&v.complete),
				(*intCol)(&v.size), (*intCol)(&v.nfiles), (*intCol)(&v.lastUpdate))
		},
		func(rows []replicaRow) error {
			if !build {
				return nil
			}
			for _, r := range rows {
				if err := st.checkRefs(r.block, 0, r.site, r.group); err != nil {
					return fmt.Errorf("block replica (%d, %d): %w", r.block, r.site, err)
				}
				st.putReplicaAt(BlockReplica{Block: BlockID(r.block), Site: SiteID(r.site), Group: GroupID(r.group),
					Custodial: r.flags&1 != 0, PendingDeletion: r.flags&2 != 0, Suspicious: r.flags&4 != 0, Complete: r.complete != 0,
					Size: r.size, NumFiles: int32(r.nfiles), LastUpdate: r.lastUpdate}, 0)
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("load block replicas: %w", err)
	}
	return nil
}

// checkRefs guards the loader against rows that point at nothing (a
// database edited by hand): better a clear error than a corrupt index.
func (st *state) checkRefs(block, ds, site, group int64) error {
	if block != 0 && (block < 0 || int32(block) >= st.blocks.len() || st.blocks.at(int32(block)).flags&flagExists == 0) {
		return fmt.Errorf("no block %d", block)
	}
	if ds != 0 && (ds < 0 || int32(ds) >= st.datasets.len() || st.datasets.at(int32(ds)).flags&flagExists == 0) {
		return fmt.Errorf("no dataset %d", ds)
	}
	if site <= 0 || int(site) >= len(st.sites) || !st.sites[site].exists {
		return fmt.Errorf("no site %d", site)
	}
	if group < 0 || int(group) >= len(st.groups) || !st.groups[group].exists {
		return fmt.Errorf("no group %d", group)
	}
	return nil
}

// Files returns the files of a block, read from the database (files are
// never held in memory).
func (s *Store) Files(ctx context.Context, block BlockID) ([]File, error) {
	var out []File
	err := s.db.SelectContext(ctx, &out, "SELECT id, block_id AS block, lfn, size, adler32 FROM files WHERE block_id = ? ORDER BY lfn", block)
	return out, err
}

// BlocksOfLFNs returns the block of each LFN that is a file of the
// inventory (LFNs it does not know are absent from the map), read from the
// database in chunks.
func (s *Store) BlocksOfLFNs(ctx context.Context, lfns []string) (map[string]BlockID, error) {
	out := map[string]BlockID{}
	for start := 0; start < len(lfns); start += 500 {
		chunk := lfns[start:min(start+500, len(lfns))]
		q := "SELECT lfn, block_id FROM files WHERE lfn IN (?" + strings.Repeat(", ?", len(chunk)-1) + ")"
		args := make([]any, len(chunk))
		for i, l := range chunk {
			args[i] = l
		}
		var rows []struct {
			LFN   string  `db:"lfn"`
			Block BlockID `db:"block_id"`
		}
		if err := s.db.SelectContext(ctx, &rows, q, args...); err != nil {
			return nil, err
		}
		for _, r := range rows {
			out[r.LFN] = r.Block
		}
	}
	return out, nil
}

// ReplicaFileIDs returns the ids of the files present in an incomplete
// block replica (empty for a complete one: then every file is present).
func (s *Store) ReplicaFileIDs(ctx context.Context, block BlockID, site SiteID) ([]FileID, error) {
	var out []FileID
	err := s.db.SelectContext(ctx, &out, "SELECT file_id FROM block_replica_files WHERE block_id = ? AND site_id = ? ORDER BY file_id", block, site)
	return out, err
}
