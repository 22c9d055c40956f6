package inventory

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/db"
)

// Update is one typed change to the inventory. A write is a list of them:
// validated against the writer's state (check), written to the database in
// one transaction with a change-log row each (persist), and after the
// commit applied in memory (apply). apply must be deterministic and must
// not fail: everything that can go wrong is caught by check or persist.
type Update interface {
	// Kind names the update in the change log.
	Kind() string
	check(t *Txn) error
	persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error
	apply(s *state, n *names)
}

// The update kinds.
type (
	UpsertSite      struct{ Site }
	UpsertGroup     struct{ Group }
	UpsertPartition struct{ Partition }
	SetQuota        struct {
		Site      SiteID      `json:"site_id"`
		Partition PartitionID `json:"partition_id"`
		Bytes     int64       `json:"bytes"`
	}
	UpsertDataset struct{ Dataset }
	DeleteDataset struct {
		ID DatasetID `json:"id"`
	}
	UpsertBlock struct{ Block }
	DeleteBlock struct {
		ID BlockID `json:"id"`
	}
	UpsertFiles struct {
		Block BlockID `json:"block_id"`
		Files []File  `json:"files"`
	}
	UpsertDatasetReplica struct{ DatasetReplica }
	DeleteDatasetReplica struct {
		Dataset DatasetID `json:"dataset_id"`
		Site    SiteID    `json:"site_id"`
	}
	UpsertBlockReplica struct{ BlockReplica }
	DeleteBlockReplica struct {
		Block BlockID `json:"block_id"`
		Site  SiteID  `json:"site_id"`
	}
	// SetReplicaFiles records which files of an incomplete block replica
	// are present (database only: file lists are never held in memory).
	// Pair it with an UpsertBlockReplica carrying the new size and count.
	SetReplicaFiles struct {
		Block  BlockID  `json:"block_id"`
		Site   SiteID   `json:"site_id"`
		Add    []FileID `json:"add,omitempty"`
		Remove []FileID `json:"remove,omitempty"`
	}
)

func (UpsertSite) Kind() string           { return "upsert_site" }
func (UpsertGroup) Kind() string          { return "upsert_group" }
func (UpsertPartition) Kind() string      { return "upsert_partition" }
func (SetQuota) Kind() string             { return "set_quota" }
func (UpsertDataset) Kind() string        { return "upsert_dataset" }
func (DeleteDataset) Kind() string        { return "delete_dataset" }
func (UpsertBlock) Kind() string          { return "upsert_block" }
func (DeleteBlock) Kind() string          { return "delete_block" }
func (UpsertFiles) Kind() string          { return "upsert_files" }
func (UpsertDatasetReplica) Kind() string { return "upsert_dataset_replica" }
func (DeleteDatasetReplica) Kind() string { return "delete_dataset_replica" }
func (UpsertBlockReplica) Kind() string   { return "upsert_block_replica" }
func (DeleteBlockReplica) Kind() string   { return "delete_block_replica" }
func (SetReplicaFiles) Kind() string      { return "set_replica_files" }

// kinds maps a change-log kind back to a value to decode into.
var kinds = map[string]func() Update{
	"upsert_site":            func() Update { return &UpsertSite{} },
	"upsert_group":           func() Update { return &UpsertGroup{} },
	"upsert_partition":       func() Update { return &UpsertPartition{} },
	"set_quota":              func() Update { return &SetQuota{} },
	"upsert_dataset":         func() Update { return &UpsertDataset{} },
	"delete_dataset":         func() Update { return &DeleteDataset{} },
	"upsert_block":           func() Update { return &UpsertBlock{} },
	"delete_block":           func() Update { return &DeleteBlock{} },
	"upsert_files":           func() Update { return &UpsertFiles{} },
	"upsert_dataset_replica": func() Update { return &UpsertDatasetReplica{} },
	"delete_dataset_replica": func() Update { return &DeleteDatasetReplica{} },
	"upsert_block_replica":   func() Update { return &UpsertBlockReplica{} },
	"delete_block_replica":   func() Update { return &DeleteBlockReplica{} },
	"set_replica_files":      func() Update { return &SetReplicaFiles{} },
}

// DecodeUpdate rebuilds an update from its change-log kind and body.
func DecodeUpdate(kind string, body []byte) (Update, error) {
	mk, ok := kinds[kind]
	if !ok {
		return nil, fmt.Errorf("change log: unknown update kind %q", kind)
	}
	u := mk()
	if err := json.Unmarshal(body, u); err != nil {
		return nil, fmt.Errorf("change log: %s: %w", kind, err)
	}
	// The pointer receivers below come from the value methods: deref so
	// that callers get the same dynamic types Txn.Add receives.
	switch v := u.(type) {
	case *UpsertSite:
		return *v, nil
	case *UpsertGroup:
		return *v, nil
	case *UpsertPartition:
		return *v, nil
	case *SetQuota:
		return *v, nil
	case *UpsertDataset:
		return *v, nil
	case *DeleteDataset:
		return *v, nil
	case *UpsertBlock:
		return *v, nil
	case *DeleteBlock:
		return *v, nil
	case *UpsertFiles:
		return *v, nil
	case *UpsertDatasetReplica:
		return *v, nil
	case *DeleteDatasetReplica:
		return *v, nil
	case *UpsertBlockReplica:
		return *v, nil
	case *DeleteBlockReplica:
		return *v, nil
	case *SetReplicaFiles:
		return *v, nil
	}
	return u, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ---- persist ----

func (u UpsertSite) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	_, err := tx.ExecContext(ctx, d.Upsert("sites",
		[]string{"id", "name", "host", "storage_type", "backend", "status"}, []string{"id"},
		[]string{"name", "host", "storage_type", "backend", "status"}),
		u.ID, u.Name, u.Host, u.StorageType.String(), u.Backend, u.Status.String())
	return err
}

func (u UpsertGroup) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	_, err := tx.ExecContext(ctx, d.Upsert("owner_groups", []string{"id", "name", "olevel"}, []string{"id"},
		[]string{"name", "olevel"}), u.ID, u.Name, u.Level.String())
	return err
}

func (u UpsertPartition) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	_, err := tx.ExecContext(ctx, d.Upsert("partitions", []string{"id", "name"}, []string{"id"}, []string{"name"}), u.ID, u.Name)
	return err
}

func (u SetQuota) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	_, err := tx.ExecContext(ctx, d.Upsert("quotas", []string{"site_id", "partition_id", "quota"},
		[]string{"site_id", "partition_id"}, []string{"quota"}), u.Site, u.Partition, u.Bytes)
	return err
}

func (u UpsertDataset) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	_, err := tx.ExecContext(ctx, d.Upsert("datasets",
		[]string{"id", "name", "status", "data_type", "software_version", "last_update", "is_open"}, []string{"id"},
		[]string{"status", "data_type", "software_version", "last_update", "is_open"}),
		u.ID, u.Name, u.Status.String(), u.DataType.String(), u.SoftwareVersion, u.LastUpdate, b2i(u.Open))
	return err
}

func execAll(ctx context.Context, tx *sqlx.Tx, arg any, stmts ...string) error {
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q, arg); err != nil {
			return err
		}
	}
	return nil
}

func (u DeleteDataset) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	return execAll(ctx, tx, u.ID,
		"DELETE FROM block_replica_files WHERE block_id IN (SELECT id FROM blocks WHERE dataset_id = ?)",
		"DELETE FROM block_replicas WHERE block_id IN (SELECT id FROM blocks WHERE dataset_id = ?)",
		"DELETE FROM files WHERE block_id IN (SELECT id FROM blocks WHERE dataset_id = ?)",
		"DELETE FROM blocks WHERE dataset_id = ?",
		"DELETE FROM dataset_replicas WHERE dataset_id = ?",
		"DELETE FROM datasets WHERE id = ?")
}

func (u UpsertBlock) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	_, err := tx.ExecContext(ctx, d.Upsert("blocks",
		[]string{"id", "dataset_id", "name", "size", "num_files", "is_open", "last_update"}, []string{"id"},
		[]string{"size", "num_files", "is_open", "last_update"}),
		u.ID, u.Dataset, u.Name, u.Size, u.NumFiles, b2i(u.Open), u.LastUpdate)
	if err != nil {
		return err
	}
	// Complete replicas carry the block's size in the database too.
	_, err = tx.ExecContext(ctx, "UPDATE block_replicas SET size = ?, num_files = ? WHERE block_id = ? AND is_complete = 1",
		u.Size, u.NumFiles, u.ID)
	return err
}

func (u DeleteBlock) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	return execAll(ctx, tx, u.ID,
		"DELETE FROM block_replica_files WHERE block_id = ?",
		"DELETE FROM block_replicas WHERE block_id = ?",
		"DELETE FROM files WHERE block_id = ?",
		"DELETE FROM blocks WHERE id = ?")
}

func (u UpsertFiles) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	// Not an upsert: MySQL's ON DUPLICATE KEY fires on any unique key, so
	// an LFN that already belongs to another file would silently rewrite
	// that file. Update by id (and LFN), else insert, which fails loudly
	// on a duplicate LFN.
	for _, f := range u.Files {
		res, err := tx.ExecContext(ctx, "UPDATE files SET size = ?, adler32 = ? WHERE id = ? AND lfn = ? AND block_id = ?",
			f.Size, f.Adler32, f.ID, f.LFN, u.Block)
		if err != nil {
			return fmt.Errorf("file %s: %w", f.LFN, err)
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO files (id, block_id, lfn, size, adler32) VALUES (?, ?, ?, ?, ?)",
			f.ID, u.Block, f.LFN, f.Size, f.Adler32); err != nil {
			return fmt.Errorf("file %s: %w", f.LFN, err)
		}
	}
	return nil
}

func (u UpsertDatasetReplica) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	_, err := tx.ExecContext(ctx, d.Upsert("dataset_replicas", []string{"dataset_id", "site_id", "growing", "group_id"},
		[]string{"dataset_id", "site_id"}, []string{"growing", "group_id"}), u.Dataset, u.Site, b2i(u.Growing), u.Group)
	return err
}

func (u DeleteDatasetReplica) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	for _, q := range []string{
		"DELETE FROM block_replica_files WHERE site_id = ? AND block_id IN (SELECT id FROM blocks WHERE dataset_id = ?)",
		"DELETE FROM block_replicas WHERE site_id = ? AND block_id IN (SELECT id FROM blocks WHERE dataset_id = ?)",
		"DELETE FROM dataset_replicas WHERE site_id = ? AND dataset_id = ?",
	} {
		if _, err := tx.ExecContext(ctx, q, u.Site, u.Dataset); err != nil {
			return err
		}
	}
	return nil
}

func (u UpsertBlockReplica) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	flags := 0
	if u.Custodial {
		flags |= 1
	}
	if u.PendingDeletion {
		flags |= 2
	}
	if u.Suspicious {
		flags |= 4
	}
	_, err := tx.ExecContext(ctx, d.Upsert("block_replicas",
		[]string{"block_id", "site_id", "group_id", "flags", "is_complete", "size", "num_files", "last_update"},
		[]string{"block_id", "site_id"}, []string{"group_id", "flags", "is_complete", "size", "num_files", "last_update"}),
		u.Block, u.Site, u.Group, flags, b2i(u.Complete), u.Size, u.NumFiles, u.LastUpdate)
	if err == nil && u.Complete {
		_, err = tx.ExecContext(ctx, "DELETE FROM block_replica_files WHERE block_id = ? AND site_id = ?", u.Block, u.Site)
	}
	return err
}

func (u DeleteBlockReplica) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	for _, q := range []string{
		"DELETE FROM block_replica_files WHERE block_id = ? AND site_id = ?",
		"DELETE FROM block_replicas WHERE block_id = ? AND site_id = ?",
	} {
		if _, err := tx.ExecContext(ctx, q, u.Block, u.Site); err != nil {
			return err
		}
	}
	return nil
}

func (u SetReplicaFiles) persist(ctx context.Context, tx *sqlx.Tx, d *db.DB) error {
	ins := d.Upsert("block_replica_files", []string{"block_id", "site_id", "file_id"}, []string{"block_id", "site_id", "file_id"}, nil)
	for _, f := range u.Add {
		if _, err := tx.ExecContext(ctx, ins, u.Block, u.Site, f); err != nil {
			return err
		}
	}
	for _, f := range u.Remove {
		if _, err := tx.ExecContext(ctx, "DELETE FROM block_replica_files WHERE block_id = ? AND site_id = ? AND file_id = ?", u.Block, u.Site, f); err != nil {
			return err
		}
	}
	return nil
}

// ---- apply ----

func (u UpsertSite) apply(s *state, n *names) {
	n.addSite(u.Name, u.ID)
	s.putSite(u.ID, u.Site)
}
func (u UpsertGroup) apply(s *state, n *names) {
	n.addGroup(u.Name, u.ID)
	s.putGroup(u.ID, u.Group)
}
func (u UpsertPartition) apply(s *state, n *names) {
	n.addPartition(u.Name, u.ID)
	for int(u.ID) >= len(s.parts) {
		s.parts = append(s.parts, partRec{})
	}
	p := &s.parts[u.ID]
	p.exists, p.name = true, u.Name
}
func (u SetQuota) apply(s *state, _ *names) { s.setQuota(u.Site, u.Partition, u.Bytes) }
func (u UpsertDataset) apply(s *state, n *names) {
	n.addDataset(u.Name, u.ID)
	s.putDataset(u.ID, u.Dataset, n.software(u.SoftwareVersion))
}
func (u DeleteDataset) apply(s *state, _ *names)        { s.delDataset(u.ID) }
func (u UpsertBlock) apply(s *state, _ *names)          { s.putBlock(u.ID, u.Block) }
func (u DeleteBlock) apply(s *state, _ *names)          { s.delBlock(u.ID) }
func (u UpsertFiles) apply(*state, *names)              {}
func (u UpsertDatasetReplica) apply(s *state, _ *names) { s.putDSReplica(u.DatasetReplica) }
func (u DeleteDatasetReplica) apply(s *state, _ *names) { s.delDSReplica(u.Dataset, u.Site) }
func (u UpsertBlockReplica) apply(s *state, _ *names)   { s.putReplica(u.BlockReplica) }
func (u DeleteBlockReplica) apply(s *state, _ *names)   { s.delReplica(u.Block, u.Site) }
func (u SetReplicaFiles) apply(*state, *names)          {}
