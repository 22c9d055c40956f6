package fileop

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/db"
)

// Held lists held subscriptions, oldest first, at most limit (0 = 1000).
func Held(ctx context.Context, d *db.DB, limit int) ([]Subscription, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []Subscription
	err := d.SelectContext(ctx, &out, "SELECT "+subCols+" FROM "+TableSubscriptions+" WHERE state = ? ORDER BY updated, id LIMIT ?", StateHeld, limit)
	return out, err
}

// Release moves held subscriptions back to new with a fresh retry budget
// and forgets their source failures. ids empty releases every held one;
// reason non-empty restricts to that hold reason. It returns how many
// moved; subscriptions not held are left alone.
func Release(ctx context.Context, d *db.DB, now time.Time, ids []int64, reason HoldReason) (int, error) {
	return ReleaseWith(ctx, d, now, ReleaseOptions{IDs: ids, HoldReason: reason})
}

// ReleaseOptions say which held subscriptions to release and what to
// record about it.
type ReleaseOptions struct {
	IDs        []int64    // empty: every held one
	HoldReason HoldReason // non-empty: only those held for it (a known reason)
	// Comment and By are recorded as the subscriptions' message
	// ("released by BY: COMMENT"), so that `fileop held`/history and the
	// requests show why an operator let them go again.
	Comment string
	By      string
}

// ParseHoldReason checks a hold reason given by an operator.
func ParseHoldReason(s string) (HoldReason, error) {
	switch r := HoldReason(s); r {
	case "", HoldNoSource, HoldAllFailed, HoldSiteUnavailable, HoldIrrecoverable:
		return r, nil
	}
	return "", fmt.Errorf("%w: hold reason %q: want no_source, all_failed, site_unavailable or irrecoverable (a note goes in the comment)", ErrInvalid, s)
}

// ReleaseWith is Release with a comment; see ReleaseOptions.
func ReleaseWith(ctx context.Context, d *db.DB, now time.Time, o ReleaseOptions) (int, error) {
	reason, err := ParseHoldReason(string(o.HoldReason))
	if err != nil {
		return 0, err
	}
	ids := o.IDs
	msg := "released"
	if o.By != "" {
		msg += " by " + o.By
	}
	if o.Comment != "" {
		msg += ": " + o.Comment
	}
	msg = clip(msg)
	n := 0
	err = d.InTx(ctx, func(tx *sqlx.Tx) error {
		n = 0
		var targets []int64
		q := "SELECT id FROM " + TableSubscriptions + " WHERE state = ?"
		args := []any{StateHeld}
		if reason != "" {
			q += " AND hold_reason = ?"
			args = append(args, reason)
		}
		if len(ids) > 0 {
			q += " AND id IN (?" + repeatQ(len(ids)-1) + ")"
			for _, id := range ids {
				args = append(args, id)
			}
		}
		if err := tx.SelectContext(ctx, &targets, q, args...); err != nil {
			return err
		}
		for _, id := range targets {
			k, err := execN(ctx, tx, "UPDATE "+TableSubscriptions+" SET state = ?, hold_reason = '', tries = 0, next_try_ns = 0, message = ?, updated = ? WHERE id = ? AND state = ?",
				StateNew, msg, now.Unix(), id, StateHeld)
			if err != nil {
				return err
			}
			if k == 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+TableSourceFailures+" WHERE subscription_id = ?", id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// Cancel cancels pending subscriptions (new, retry or held). Rows in
// flight or finished are left alone. It returns how many were cancelled.
func Cancel(ctx context.Context, d *db.DB, now time.Time, ids []int64) (int, error) {
	n := 0
	err := d.InTx(ctx, func(tx *sqlx.Tx) error {
		n = 0
		for _, id := range ids {
			k, err := execN(ctx, tx, "UPDATE "+TableSubscriptions+" SET state = ?, live = NULL, message = 'cancelled by request', updated = ? WHERE id = ? AND state IN (?, ?, ?)",
				StateCancelled, now.Unix(), id, StateNew, StateRetry, StateHeld)
			if err != nil {
				return err
			}
			n += int(k)
		}
		return nil
	})
	return n, err
}

// Get returns one subscription.
func Get(ctx context.Context, d *db.DB, id int64) (Subscription, error) {
	var s Subscription
	err := d.GetContext(ctx, &s, "SELECT "+subCols+" FROM "+TableSubscriptions+" WHERE id = ?", id)
	if err != nil {
		return s, fmt.Errorf("%w: %d: %v", ErrNotFound, id, err)
	}
	return s, nil
}

// StatusRow counts subscriptions of one op in one state (and hold reason).
type StatusRow struct {
	Op         Op         `db:"op" json:"op"`
	State      State      `db:"state" json:"state"`
	HoldReason HoldReason `db:"hold_reason" json:"hold_reason,omitempty"`
	Count      int64      `db:"n" json:"count"`
	Bytes      int64      `db:"bytes" json:"bytes"`
}

// Status counts subscriptions by op, state and hold reason.
func Status(ctx context.Context, d *db.DB) ([]StatusRow, error) {
	var out []StatusRow
	err := d.SelectContext(ctx, &out, "SELECT op, state, hold_reason, COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM "+TableSubscriptions+
		" GROUP BY op, state, hold_reason ORDER BY op, state, hold_reason")
	return out, err
}

// HistoryEntry is one recorded attempt.
type HistoryEntry struct {
	ID           int64  `db:"id" json:"id"`
	Subscription int64  `db:"subscription_id" json:"subscription_id"`
	Op           Op     `db:"op" json:"op"`
	FileID       int64  `db:"file_id" json:"file_id"`
	LFN          string `db:"lfn" json:"lfn"`
	SourceSite   int32  `db:"source_site_id" json:"source_site_id,omitempty"`
	Site         int32  `db:"site_id" json:"site_id"`
	Source       string `db:"source" json:"source,omitempty"`
	Destination  string `db:"destination" json:"destination"`
	Backend      string `db:"backend" json:"backend"`
	Outcome      string `db:"outcome" json:"outcome"`
	Mode         string `db:"mode" json:"mode,omitempty"`
	Bytes        int64  `db:"bytes" json:"bytes"`
	DurationNS   int64  `db:"duration_ns" json:"duration_ns"`
	Checksum     string `db:"checksum" json:"checksum,omitempty"`
	ExitCode     int    `db:"exit_code" json:"exit_code"`
	Code         string `db:"code" json:"code,omitempty"`
	Message      string `db:"message" json:"message,omitempty"`
	Finished     int64  `db:"finished" json:"finished"`
	// Block is the file's block (QueryHistory only; 0 elsewhere).
	Block int32 `db:"block_id" json:"block_id,omitempty"`
}

// History returns recorded attempts, newest first: of one subscription
// when sub > 0, else all; at most limit (0 = 100).
func History(ctx context.Context, d *db.DB, sub int64, limit int) ([]HistoryEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT id, subscription_id, op, file_id, lfn, source_site_id, site_id, source, destination, backend, outcome, mode, bytes, duration_ns, checksum, exit_code, code, message, finished FROM " + TableHistory
	args := []any{}
	if sub > 0 {
		q += " WHERE subscription_id = ?"
		args = append(args, sub)
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	var out []HistoryEntry
	err := d.SelectContext(ctx, &out, q, args...)
	return out, err
}

// LinkRow counts pending subscriptions of one op on one link in one
// state. Source is 0 while no source has been chosen (a transfer not yet
// dispatched) and for deletions.
type LinkRow struct {
	Op     Op    `db:"op" json:"op"`
	Source int32 `db:"source_site_id" json:"source_site_id"`
	Site   int32 `db:"site_id" json:"site_id"`
	State  State `db:"state" json:"state"`
	Count  int64 `db:"n" json:"count"`
	Bytes  int64 `db:"bytes" json:"bytes"`
}

// Queue counts the live subscriptions (not yet done, failed for good or
// cancelled) by op, link and state.
func Queue(ctx context.Context, d *db.DB) ([]LinkRow, error) {
	var out []LinkRow
	err := d.SelectContext(ctx, &out, "SELECT op, source_site_id, site_id, state, COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM "+
		TableSubscriptions+" WHERE live = 1 GROUP BY op, source_site_id, site_id, state ORDER BY op, site_id, source_site_id, state")
	return out, err
}

// ThroughputPoint is what one link moved in one time bucket.
type ThroughputPoint struct {
	Start  int64 `db:"t" json:"start"` // unix seconds, a multiple of the bucket width
	Source int32 `db:"source_site_id" json:"source_site_id"`
	Site   int32 `db:"site_id" json:"site_id"`
	Bytes  int64 `db:"bytes" json:"bytes"`
	Files  int64 `db:"n" json:"files"`
}

// Throughput sums the bytes of successful transfers per link and per
// bucket of width seconds, for attempts finished at or after since.
func Throughput(ctx context.Context, d *db.DB, since time.Time, width time.Duration) ([]ThroughputPoint, error) {
	w := int64(width / time.Second)
	if w <= 0 {
		return nil, fmt.Errorf("%w: throughput bucket %s: want at least 1s", ErrInvalid, width)
	}
	var out []ThroughputPoint
	err := d.SelectContext(ctx, &out, "SELECT finished - (finished % ?) AS t, source_site_id, site_id, COALESCE(SUM(bytes), 0) AS bytes, COUNT(*) AS n FROM "+
		TableHistory+" WHERE op = ? AND outcome = 'done' AND finished >= ? GROUP BY t, source_site_id, site_id ORDER BY t",
		w, OpTransfer, since.Unix())
	return out, err
}
