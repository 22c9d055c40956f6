package synth

import (
	"context"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// sink receives the generated rows, parents first: the database (bulk
// inserts, for `bench generate`) or memory (an inventory.Builder, for
// inventories too large to write first).
type sink interface {
	site(ctx context.Context, id int, name, host, typ, backend, status string) error
	group(ctx context.Context, id int, name, level string) error
	dataset(ctx context.Context, id int, name, status, dtype, sw string, last int64, open int) error
	datasetReplica(ctx context.Context, ds, site, growing, group int) error
	block(ctx context.Context, id int64, ds int, name string, size int64, nfiles, open int, last int64) error
	blockReplica(ctx context.Context, block int64, site, group, flags, complete int, size int64, nfiles int, last int64) error
	quota(ctx context.Context, site int, bytes int64) error // in the Default partition
	finish(ctx context.Context) error
}

type dbSink struct{ w *bulk }

func (s dbSink) site(ctx context.Context, id int, name, host, typ, backend, status string) error {
	if id == 1 {
		if err := s.w.add(ctx, "partitions", "id, name", 1, "Default"); err != nil {
			return err
		}
	}
	return s.w.add(ctx, "sites", "id, name, host, storage_type, backend, status", id, name, host, typ, backend, status)
}

func (s dbSink) group(ctx context.Context, id int, name, level string) error {
	return s.w.add(ctx, "owner_groups", "id, name, olevel", id, name, level)
}

func (s dbSink) dataset(ctx context.Context, id int, name, status, dtype, sw string, last int64, open int) error {
	return s.w.add(ctx, "datasets", "id, name, status, data_type, software_version, last_update, is_open",
		id, name, status, dtype, sw, last, open)
}

func (s dbSink) datasetReplica(ctx context.Context, ds, site, growing, group int) error {
	return s.w.add(ctx, "dataset_replicas", "dataset_id, site_id, growing, group_id", ds, site, growing, group)
}

func (s dbSink) block(ctx context.Context, id int64, ds int, name string, size int64, nfiles, open int, last int64) error {
	return s.w.add(ctx, "blocks", "id, dataset_id, name, size, num_files, is_open, last_update", id, ds, name, size, nfiles, open, last)
}

func (s dbSink) blockReplica(ctx context.Context, block int64, site, group, flags, complete int, size int64, nfiles int, last int64) error {
	return s.w.add(ctx, "block_replicas", "block_id, site_id, group_id, flags, is_complete, size, num_files, last_update",
		block, site, group, flags, complete, size, nfiles, last)
}

func (s dbSink) quota(ctx context.Context, site int, bytes int64) error {
	return s.w.add(ctx, "quotas", "site_id, partition_id, quota", site, 1, bytes)
}

func (s dbSink) finish(ctx context.Context) error { return s.w.flushAll(ctx) }

// memSink builds the inventory in memory.
type memSink struct {
	b    *inventory.Builder
	name []byte
}

func (s *memSink) site(_ context.Context, id int, name, host, typ, backend, status string) error {
	t, err := inventory.ParseStorageType(typ)
	if err != nil {
		return err
	}
	st, err := inventory.ParseSiteStatus(status)
	if err != nil {
		return err
	}
	s.b.Site(inventory.Site{ID: inventory.SiteID(id), Name: name, Host: host, StorageType: t, Backend: backend, Status: st})
	return nil
}

func (s *memSink) group(_ context.Context, id int, name, level string) error {
	l, err := inventory.ParseOwnershipLevel(level)
	if err != nil {
		return err
	}
	s.b.Group(inventory.Group{ID: inventory.GroupID(id), Name: name, Level: l})
	return nil
}

func (s *memSink) dataset(_ context.Context, id int, name, status, dtype, sw string, last int64, open int) error {
	st, err := inventory.ParseDatasetStatus(status)
	if err != nil {
		return err
	}
	dt, err := inventory.ParseDataType(dtype)
	if err != nil {
		return err
	}
	s.b.Dataset(inventory.Dataset{ID: inventory.DatasetID(id), Name: name, Status: st, DataType: dt,
		SoftwareVersion: sw, LastUpdate: last, Open: open != 0})
	return nil
}

func (s *memSink) datasetReplica(_ context.Context, ds, site, growing, group int) error {
	s.b.DatasetReplica(inventory.DatasetReplica{Dataset: inventory.DatasetID(ds), Site: inventory.SiteID(site),
		Growing: growing != 0, Group: inventory.GroupID(group)})
	return nil
}

func (s *memSink) block(_ context.Context, id int64, ds int, name string, size int64, nfiles, open int, last int64) error {
	if id > 1<<31-1 {
		return fmt.Errorf("synth: block id %d does not fit the inventory's 32-bit ids", id)
	}
	s.name = append(s.name[:0], name...)
	s.b.Block(inventory.BlockID(id), inventory.DatasetID(ds), s.name, size, int32(nfiles), open != 0, last)
	return nil
}

func (s *memSink) blockReplica(_ context.Context, block int64, site, group, flags, complete int, size int64, nfiles int, last int64) error {
	s.b.BlockReplica(inventory.BlockReplica{Block: inventory.BlockID(block), Site: inventory.SiteID(site),
		Group: inventory.GroupID(group), Custodial: flags&1 != 0, Complete: complete != 0, Size: size,
		NumFiles: int32(nfiles), LastUpdate: last})
	return nil
}

func (s *memSink) quota(_ context.Context, site int, bytes int64) error {
	return s.b.Quota(inventory.SiteID(site), "Default", bytes)
}

func (s *memSink) finish(context.Context) error { return nil }

// Build generates the inventory of spec straight into memory, with the
// Default partition, and returns a read-only store (see
// inventory.Builder). d serves the components' own tables only.
func Build(ctx context.Context, d *db.DB, log *logrus.Entry, spec Spec, progress func(Stats)) (*inventory.Store, Stats, error) {
	if err := spec.check(); err != nil {
		return nil, Stats{}, err
	}
	b, err := inventory.NewBuilder(d, log, nil)
	if err != nil {
		return nil, Stats{}, err
	}
	st, err := generate(ctx, spec, &memSink{b: b}, progress)
	s := b.Store()
	if err != nil {
		return nil, st, err
	}
	return s, st, nil
}
