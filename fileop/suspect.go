package fileop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// TableReplicaMismatches counts checksum mismatches per source replica.
const TableReplicaMismatches = "fileop_replica_mismatches"

// ReplicaHealth is a block replica with checksum mismatches traced to it,
// or flagged suspicious (automatically or by an operator).
type ReplicaHealth struct {
	Block      string `json:"block" db:"-"`
	Site       string `json:"site" db:"-"`
	BlockID    int64  `json:"block_id" db:"block_id"`
	SiteID     int32  `json:"site_id" db:"site_id"`
	Mismatches int    `json:"mismatches" db:"mismatches"`
	LastLFN    string `json:"last_lfn,omitempty" db:"last_lfn"`
	Reason     string `json:"reason,omitempty" db:"reason"`
	Updated    int64  `json:"updated" db:"updated"`
	Suspicious bool   `json:"suspicious" db:"-"`
}

// sourceMismatches adds to t the consequences of the checksum mismatches
// among fs: per source replica, the count goes up (in t's transaction) and
// a replica reaching threshold is flagged suspicious in the inventory. The
// daemon's single commit loop is the only writer of the counts, so reading
// them before the transaction is safe.
func sourceMismatches(ctx context.Context, d *db.DB, t *inventory.Txn, fs []finished, threshold int) error {
	type key struct {
		block inventory.BlockID
		site  inventory.SiteID
	}
	add := map[key]int{}
	last := map[key]string{}
	var order []key
	for _, f := range fs {
		if f.r.Err == nil || f.a.sub.Op != OpTransfer || f.a.src <= 0 || !errors.Is(f.r.Err, driver.ErrChecksumMismatch) {
			continue
		}
		k := key{inventory.BlockID(f.a.sub.BlockID), inventory.SiteID(f.a.src)}
		if add[k] == 0 {
			order = append(order, k)
		}
		add[k]++
		last[k] = f.a.sub.LFN
	}
	if len(order) == 0 {
		return nil
	}
	at := t.At().Unix()
	for _, k := range order {
		var have int
		err := d.GetContext(ctx, &have, "SELECT mismatches FROM "+TableReplicaMismatches+" WHERE block_id = ? AND site_id = ?", k.block, k.site)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("mismatch count: %w", err)
		}
		n := have + add[k]
		reason := ""
		if r, ok := t.BlockReplica(k.block, k.site); ok && n >= threshold && !r.Suspicious {
			r.Suspicious = true
			reason = fmt.Sprintf("%d checksum mismatches as a transfer source", n)
			if err := t.Add(inventory.UpsertBlockReplica{BlockReplica: r}); err != nil {
				return err
			}
		}
		k, lfn := k, last[k]
		t.Exec(func(ctx context.Context, tx *sqlx.Tx) error {
			return upsertMismatches(ctx, d, tx, int64(k.block), int32(k.site), n, lfn, reason, at)
		})
	}
	return nil
}

func upsertMismatches(ctx context.Context, d *db.DB, tx *sqlx.Tx, block int64, site int32, n int, lfn, reason string, at int64) error {
	q := d.Upsert(TableReplicaMismatches, []string{"block_id", "site_id", "mismatches", "last_lfn", "reason", "updated"},
		[]string{"block_id", "site_id"}, []string{"mismatches", "last_lfn", "reason", "updated"})
	if reason == "" {
		// Keep the reason a flag was set with.
		var old string
		if err := tx.GetContext(ctx, &old, "SELECT reason FROM "+TableReplicaMismatches+" WHERE block_id = ? AND site_id = ?", block, site); err == nil {
			reason = old
		}
	}
	_, err := tx.ExecContext(ctx, q, block, site, n, lfn, reason, at)
	return err
}

// MarkReplica declares the replica of block (dataset#block) at site bad
// (bad true: flagged suspicious, with the operator's reason) or clears the
// flag and its mismatch count (bad false), in one inventory write through
// w (in `dynamo serve`, the lease-fenced writer). An unknown block or
// replica is ErrNotFound; an empty reason for bad is ErrInvalid.
func MarkReplica(ctx context.Context, w inventory.Writer, d *db.DB, snap *inventory.Snapshot, block, site string, bad bool, reason string, at time.Time) error {
	if bad && reason == "" {
		return fmt.Errorf("%w: declaring a replica bad needs a reason", ErrInvalid)
	}
	b, ok := snap.BlockByName(block)
	if !ok {
		return fmt.Errorf("%w: block %s", ErrNotFound, block)
	}
	s, ok := snap.SiteByName(site)
	if !ok {
		return fmt.Errorf("%w: site %s", ErrNotFound, site)
	}
	_, err := w.Write(ctx, at, func(t *inventory.Txn) error {
		r, ok := t.BlockReplica(b.ID, s.ID)
		if !ok {
			return fmt.Errorf("%w: %s has no replica at %s", ErrNotFound, block, site)
		}
		if r.Suspicious != bad {
			r.Suspicious = bad
			if err := t.Add(inventory.UpsertBlockReplica{BlockReplica: r}); err != nil {
				return err
			}
		}
		t.Exec(func(ctx context.Context, tx *sqlx.Tx) error {
			if !bad {
				_, err := tx.ExecContext(ctx, "DELETE FROM "+TableReplicaMismatches+" WHERE block_id = ? AND site_id = ?", b.ID, s.ID)
				return err
			}
			var n int
			_ = tx.GetContext(ctx, &n, "SELECT mismatches FROM "+TableReplicaMismatches+" WHERE block_id = ? AND site_id = ?", b.ID, s.ID)
			return upsertMismatches(ctx, d, tx, int64(b.ID), int32(s.ID), n, "", "declared bad: "+reason, at.Unix())
		})
		return nil
	})
	return err
}

// ReplicaHealthList lists the replicas with mismatches recorded or flagged
// suspicious, by block and site name.
func ReplicaHealthList(ctx context.Context, d *db.DB, snap *inventory.Snapshot) ([]ReplicaHealth, error) {
	var rows []ReplicaHealth
	if err := d.SelectContext(ctx, &rows, "SELECT block_id, site_id, mismatches, last_lfn, reason, updated FROM "+TableReplicaMismatches+" ORDER BY block_id, site_id"); err != nil {
		return nil, err
	}
	out := []ReplicaHealth{}
	for _, r := range rows {
		r.Block = snap.BlockFullName(inventory.BlockID(r.BlockID))
		if s, ok := snap.Site(inventory.SiteID(r.SiteID)); ok {
			r.Site = s.Name
		}
		if br, ok := snap.BlockReplica(inventory.BlockID(r.BlockID), inventory.SiteID(r.SiteID)); ok {
			r.Suspicious = br.Suspicious
		}
		out = append(out, r)
	}
	return out, nil
}

// TableForcedSources holds the sources operators named for retries.
const TableForcedSources = "fileop_forced_sources"

// RetryFromSource moves a held transfer back to the queue, to be read from
// site only (an operator's choice, e.g. for one held "no source" because
// every other copy is suspicious or failed). The site must hold a
// complete copy that is not suspicious (clear a flag first with
// MarkReplica): ErrInvalid otherwise. A subscription that is not a held
// transfer is ErrConflict; an unknown one ErrNotFound.
func RetryFromSource(ctx context.Context, d *db.DB, snap *inventory.Snapshot, now time.Time, id int64, site string) error {
	s, err := Get(ctx, d, id)
	if err != nil {
		return err
	}
	if s.Op != OpTransfer || s.State != StateHeld {
		return fmt.Errorf("%w: subscription %d is a %s in state %s, not a held transfer", ErrConflict, id, s.Op, s.State)
	}
	src, ok := snap.SiteByName(site)
	if !ok {
		return fmt.Errorf("%w: unknown site %s", ErrInvalid, site)
	}
	r, ok := snap.BlockReplica(inventory.BlockID(s.BlockID), src.ID)
	switch {
	case !ok || !r.Complete:
		return fmt.Errorf("%w: %s holds no complete copy of %s", ErrInvalid, site, s.LFN)
	case r.Suspicious:
		return fmt.Errorf("%w: the copy at %s is flagged suspicious; clear the flag first", ErrInvalid, site)
	case src.ID == inventory.SiteID(s.SiteID):
		return fmt.Errorf("%w: %s is the transfer's destination", ErrInvalid, site)
	}
	return d.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, d.Upsert(TableForcedSources, []string{"subscription_id", "source_site_id", "at"},
			[]string{"subscription_id"}, []string{"source_site_id", "at"}), id, src.ID, now.Unix()); err != nil {
			return err
		}
		k, err := execN(ctx, tx, "UPDATE "+TableSubscriptions+" SET state = ?, hold_reason = '', tries = 0, next_try_ns = 0, message = ?, updated = ? WHERE id = ? AND state = ?",
			StateNew, clip("retry from "+site), now.Unix(), id, StateHeld)
		if err != nil {
			return err
		}
		if k == 0 {
			return fmt.Errorf("%w: subscription %d is no longer held", ErrConflict, id)
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM "+TableSourceFailures+" WHERE subscription_id = ?", id)
		return err
	})
}

// forcedSources reads every named source. Operators create them one
// retry at a time and a subscription's is deleted when it succeeds, so the
// table stays small: it is read whole, once per dispatch pass.
func forcedSources(ctx context.Context, d *db.DB) (map[int64]inventory.SiteID, error) {
	var rows []struct {
		Sub  int64 `db:"subscription_id"`
		Site int32 `db:"source_site_id"`
	}
	if err := d.SelectContext(ctx, &rows, "SELECT subscription_id, source_site_id FROM "+TableForcedSources); err != nil {
		return nil, err
	}
	out := make(map[int64]inventory.SiteID, len(rows))
	for _, r := range rows {
		out[r.Sub] = inventory.SiteID(r.Site)
	}
	return out, nil
}
