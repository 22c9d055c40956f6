package consistency

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// Run statuses (consistency_runs.status).
const (
	StatusRunning = "running" // in progress, or interrupted: the next run resumes it
	StatusDone    = "done"
	StatusAlert   = "alert" // a safety valve stopped every action
	StatusFailed  = "failed"
)

// ErrNoRun: no run with that id.
var ErrNoRun = apierr.New(apierr.ErrNotFound, "no such consistency run")

// RunRecord is one row of consistency_runs: a run's outcome and counts.
type RunRecord struct {
	ID        int64  `json:"id" db:"id"`
	Site      string `json:"site" db:"site"`
	DryRun    bool   `json:"dry_run" db:"dry_run"`
	Status    string `json:"status" db:"status"`
	StartedAt int64  `json:"started_at" db:"started_at"`
	EndedAt   int64  `json:"ended_at" db:"ended_at"`
	WorkDir   string `json:"-" db:"work_dir"`
	Message   string `json:"message,omitempty" db:"message"`
	Dirs      int64  `json:"listed_dirs" db:"listed_dirs"`
	Counts
	EmptyDirs int64 `json:"empty_dirs" db:"empty_dirs"`
	// Temporary counts drivers' temporary uploads seen (list "temporary").
	Temporary       int64 `json:"temporary" db:"temporary_files"`
	TransfersQueued int64 `json:"transfers_queued" db:"transfers_queued"`
	// DeletionsQueued counts orphan deletions queued, or done directly when
	// the Actions cannot queue them (see DeletionQueuer).
	DeletionsQueued int64 `json:"deletions_queued" db:"deletions_queued"`
	ReplicasUpdated int64 `json:"replicas_updated" db:"replicas_updated"`
	DirsRemoved     int64 `json:"dirs_removed" db:"dirs_removed"`
}

const runCols = `id, site, dry_run, status, started_at, ended_at, work_dir, message, listed_dirs, site_files, site_bytes,
expected_files, expected_bytes, matched, missing, missing_bytes, orphans, orphan_bytes, size_mismatch,
checksum_mismatch, stalled, skipped, empty_dirs, temporary_files, transfers_queued, deletions_queued, replicas_updated, dirs_removed`

func insertRun(ctx context.Context, d *db.DB, r *RunRecord) error {
	res, err := d.ExecContext(ctx, `INSERT INTO consistency_runs (site, dry_run, status, started_at, work_dir, message) VALUES (?, ?, ?, ?, '', '')`,
		r.Site, r.DryRun, r.Status, r.StartedAt)
	if err != nil {
		return fmt.Errorf("consistency run of %s: %w", r.Site, err)
	}
	r.ID, err = res.LastInsertId()
	return err
}

func saveRun(ctx context.Context, d *db.DB, r *RunRecord) error {
	_, err := d.NamedExecContext(ctx, `UPDATE consistency_runs SET status = :status, ended_at = :ended_at, work_dir = :work_dir,
message = :message, listed_dirs = :listed_dirs, site_files = :site_files, site_bytes = :site_bytes,
expected_files = :expected_files, expected_bytes = :expected_bytes, matched = :matched, missing = :missing,
missing_bytes = :missing_bytes, orphans = :orphans, orphan_bytes = :orphan_bytes, size_mismatch = :size_mismatch,
checksum_mismatch = :checksum_mismatch, stalled = :stalled, skipped = :skipped, empty_dirs = :empty_dirs, temporary_files = :temporary_files,
transfers_queued = :transfers_queued, deletions_queued = :deletions_queued, replicas_updated = :replicas_updated,
dirs_removed = :dirs_removed WHERE id = :id`, r)
	if err != nil {
		return fmt.Errorf("consistency run %d: %w", r.ID, err)
	}
	return nil
}

// GetRun returns one run.
func GetRun(ctx context.Context, d *db.DB, id int64) (RunRecord, error) {
	var r RunRecord
	err := d.GetContext(ctx, &r, `SELECT `+runCols+` FROM consistency_runs WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("run %d: %w", id, ErrNoRun)
	}
	return r, err
}

// ListRuns returns the newest runs first, of one site or ("") all, at most limit.
func ListRuns(ctx context.Context, d *db.DB, site string, limit int) ([]RunRecord, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	out := []RunRecord{}
	var err error
	if site == "" {
		err = d.SelectContext(ctx, &out, `SELECT `+runCols+` FROM consistency_runs ORDER BY id DESC LIMIT ?`, limit)
	} else {
		err = d.SelectContext(ctx, &out, `SELECT `+runCols+` FROM consistency_runs WHERE site = ? ORDER BY id DESC LIMIT ?`, site, limit)
	}
	return out, err
}

// resumableRun is the site's newest run if it is still marked running
// (its process died or was stopped): its checkpoint is reused.
func resumableRun(ctx context.Context, d *db.DB, site string, dryRun bool) (*RunRecord, error) {
	runs, err := ListRuns(ctx, d, site, 1)
	if err != nil || len(runs) == 0 || runs[0].Status != StatusRunning || runs[0].DryRun != dryRun {
		return nil, err
	}
	return &runs[0], nil
}

// previousRun is the id of the site's newest completed, acting run before
// id (0 if none): the run whose missing files confirm this run's.
func previousRun(ctx context.Context, d *db.DB, site string, id int64) (int64, error) {
	var prev sql.NullInt64
	err := d.GetContext(ctx, &prev, `SELECT MAX(id) FROM consistency_runs WHERE site = ? AND id < ? AND status = ? AND dry_run = 0`, site, id, StatusDone)
	return prev.Int64, err
}

// confirmedMissing returns which of files were already missing in run prev.
func confirmedMissing(ctx context.Context, d *db.DB, site inventory.SiteID, prev int64, files []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	if prev == 0 {
		return out, nil
	}
	for start := 0; start < len(files); start += 500 {
		chunk := files[start:min(len(files), start+500)]
		q, args, err := sqlx.In(`SELECT file_id FROM consistency_missing WHERE site_id = ? AND last_run = ? AND file_id IN (?)`, site, prev, chunk)
		if err != nil {
			return nil, err
		}
		var ids []int64
		if err := d.SelectContext(ctx, &ids, q, args...); err != nil {
			return nil, err
		}
		for _, id := range ids {
			out[id] = true
		}
	}
	return out, nil
}

// recordMissing makes files the site's missing set as of run id: rows for
// files seen again keep their first run, others are dropped.
func recordMissing(ctx context.Context, d *db.DB, site inventory.SiteID, id int64, files []int64) error {
	up := d.Upsert("consistency_missing", []string{"site_id", "file_id", "first_run", "last_run"}, []string{"site_id", "file_id"}, []string{"last_run"})
	return d.InTx(ctx, func(tx *sqlx.Tx) error {
		for _, f := range files {
			if _, err := tx.ExecContext(ctx, up, site, f, id, id); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM consistency_missing WHERE site_id = ? AND last_run < ?`, site, id)
		return err
	})
}
