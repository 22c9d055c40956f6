package fileop

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// Request asks for one operation on one file at one site.
//
// A deletion of a file outside the inventory (an orphan found by the
// consistency checker) leaves File.ID and File.Block zero: Enqueue then
// gives it a synthetic negative file id derived from the LFN, and its
// completion changes nothing in the inventory.
type Request struct {
	Op Op
	// File is the inventory file (ID, Block, LFN, Size, Adler32 are copied
	// into the subscription so the daemon needs no file lookups).
	File inventory.File
	// Site is the destination of a transfer or the site of a deletion.
	Site inventory.SiteID
	// Priority orders pending work: higher first, then older first.
	Priority int
}

// EnqueueResult counts what Enqueue did.
type EnqueueResult struct {
	Added     int // new subscriptions
	Existing  int // a live subscription of the same op was already there
	Cancelled int // opposite pending subscriptions cancelled
}

// Enqueue records requests inside tx, the caller's transaction (use it from
// inventory.Txn.Exec so the queue changes commit with the inventory change
// that motivated them). For each request it first cancels the opposite
// pending subscription for the same file and site (a deletion cancels a
// pending transfer and vice versa; one already inbatch is left to finish and
// the new one waits for it), then inserts a new subscription unless a live
// one of the same op exists, whose priority is raised if lower. Enqueue is
// idempotent and re-runnable in a retried transaction.
func Enqueue(ctx context.Context, d *db.DB, tx *sqlx.Tx, at time.Time, reqs []Request) (EnqueueResult, error) {
	var res EnqueueResult
	type key struct {
		op   Op
		site inventory.SiteID
	}
	groups := map[key][]Request{}
	var order []key
	for _, r := range reqs {
		if r.Op != OpTransfer && r.Op != OpDeletion {
			return res, fmt.Errorf("%w: op %q for %s (want transfer or deletion)", ErrInvalid, r.Op, r.File.LFN)
		}
		if r.Op == OpDeletion && r.File.ID == 0 && r.File.Block == 0 && r.File.LFN != "" {
			r.File.ID = UnmanagedFileID(r.File.LFN)
		} else if r.File.ID <= 0 || r.File.Block <= 0 || r.Site <= 0 || r.File.LFN == "" {
			return res, fmt.Errorf("%w: %s of %q: file id %d, block %d, site %d must be set", ErrInvalid, r.Op, r.File.LFN, r.File.ID, r.File.Block, r.Site)
		}
		if r.Site <= 0 {
			return res, fmt.Errorf("%w: %s of %q: no site", ErrInvalid, r.Op, r.File.LFN)
		}
		k := key{r.Op, r.Site}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	// Statements work on chunks of files (one round trip per chunk, not
	// per file): enqueueing a whole block must be cheap on MySQL too.
	for _, k := range order {
		rs := groups[k]
		for start := 0; start < len(rs); start += enqueueChunk {
			r, err := enqueueChunkTx(ctx, tx, at, k.op, k.site, rs[start:min(start+enqueueChunk, len(rs))])
			res.Added += r.Added
			res.Existing += r.Existing
			res.Cancelled += r.Cancelled
			if err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

const enqueueChunk = 400

// UnmanagedFileID is the file id of a file outside the inventory: negative
// (inventory ids are positive), derived from the LFN so that queueing the
// same orphan twice finds the same subscription.
func UnmanagedFileID(lfn string) inventory.FileID {
	h := fnv.New64a()
	h.Write([]byte(lfn))
	return -inventory.FileID(h.Sum64()>>2) - 1
}

// EnqueueTx is Enqueue in a transaction of its own, for callers that
// change nothing else (the consistency checker).
func EnqueueTx(ctx context.Context, d *db.DB, at time.Time, reqs []Request) (EnqueueResult, error) {
	var res EnqueueResult
	err := d.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		res, err = Enqueue(ctx, d, tx, at, reqs)
		return err
	})
	return res, err
}

// InFlight returns the LFNs with a live subscription (transfer to, or
// deletion at, site): queued, running, waiting for a retry or held.
func InFlight(ctx context.Context, d *db.DB, site inventory.SiteID) (map[string]struct{}, error) {
	var lfns []string
	if err := d.SelectContext(ctx, &lfns, "SELECT lfn FROM "+TableSubscriptions+" WHERE site_id = ? AND live = 1", site); err != nil {
		return nil, err
	}
	out := make(map[string]struct{}, len(lfns))
	for _, l := range lfns {
		out[l] = struct{}{}
	}
	return out, nil
}

func enqueueChunkTx(ctx context.Context, tx *sqlx.Tx, at time.Time, op Op, site inventory.SiteID, rs []Request) (EnqueueResult, error) {
	var res EnqueueResult
	now := at.Unix()
	opp := OpDeletion
	if op == OpDeletion {
		opp = OpTransfer
	}
	ids := make([]any, 0, len(rs))
	want := map[int64]Request{}
	for _, r := range rs {
		if old, dup := want[int64(r.File.ID)]; !dup || r.Priority > old.Priority {
			if !dup {
				ids = append(ids, int64(r.File.ID))
			}
			want[int64(r.File.ID)] = r
		}
	}
	in := " AND file_id IN (?" + repeatQ(len(ids)-1) + ")"
	n, err := execN(ctx, tx, "UPDATE "+TableSubscriptions+" SET state = ?, live = NULL, updated = ?, message = ? "+
		"WHERE op = ? AND site_id = ? AND live = 1 AND state IN (?, ?, ?)"+in,
		append([]any{StateCancelled, now, "cancelled by a " + string(op), opp, site, StateNew, StateRetry, StateHeld}, ids...)...)
	if err != nil {
		return res, fmt.Errorf("cancel opposite of %s at site %d: %w", op, site, err)
	}
	res.Cancelled = int(n)
	var live []struct {
		File     int64 `db:"file_id"`
		Priority int   `db:"priority"`
	}
	if err := tx.SelectContext(ctx, &live, "SELECT file_id, priority FROM "+TableSubscriptions+" WHERE op = ? AND site_id = ? AND live = 1"+in,
		append([]any{op, site}, ids...)...); err != nil {
		return res, fmt.Errorf("%s at site %d: %w", op, site, err)
	}
	for _, l := range live {
		r := want[l.File]
		delete(want, l.File)
		res.Existing++
		if r.Priority > l.Priority {
			if _, err := tx.ExecContext(ctx, "UPDATE "+TableSubscriptions+" SET priority = ?, updated = ? WHERE op = ? AND file_id = ? AND site_id = ? AND live = 1",
				r.Priority, now, op, l.File, site); err != nil {
				return res, fmt.Errorf("%s %s: %w", op, r.File.LFN, err)
			}
		}
	}
	if len(want) == 0 {
		return res, nil
	}
	q := "INSERT INTO " + TableSubscriptions + " (op, file_id, block_id, site_id, lfn, size, adler32, state, live, priority, created, updated) VALUES "
	args := make([]any, 0, 11*len(want))
	first := true
	for _, id := range ids {
		r, ok := want[id.(int64)]
		if !ok {
			continue
		}
		if !first {
			q += ", "
		}
		first = false
		q += "(?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)"
		args = append(args, op, r.File.ID, r.File.Block, site, r.File.LFN, r.File.Size, r.File.Adler32, StateNew, r.Priority, now, now)
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return res, fmt.Errorf("queue %d %ss at site %d: %w", len(want), op, site, err)
	}
	res.Added = len(want)
	return res, nil
}

// ReplicaRef names a block replica.
type ReplicaRef struct {
	Block inventory.BlockID
	Site  inventory.SiteID
	// AllowLastCopy is a deletion's explicit opt-in to remove the last
	// copy of the block (a Detox LAST COPY deletion of a partition that
	// allows it). Transfers ignore it.
	AllowLastCopy bool
}

// QueueTransfers queues, as part of the inventory write t, the transfer of
// every file the block replicas lack. Dealer calls it inside the
// store.Write that adds the (incomplete) replicas, so the replicas and
// their subscriptions appear together. A complete replica needs nothing.
// It returns the number of files requested (new or already queued).
//
// It reads the block's files from the database (they are never in memory);
// Store.Write serializes writers, so they cannot change under it.
func QueueTransfers(ctx context.Context, s *inventory.Store, t *inventory.Txn, reps []ReplicaRef, priority int) (int, error) {
	var reqs []Request
	for _, rr := range reps {
		if r, ok := t.BlockReplica(rr.Block, rr.Site); ok && r.Complete {
			continue
		}
		files, err := s.Files(ctx, rr.Block)
		if err != nil {
			return 0, fmt.Errorf("files of block %d: %w", rr.Block, err)
		}
		have, err := presentSet(ctx, s, t, rr)
		if err != nil {
			return 0, err
		}
		for _, f := range files {
			if !have[f.ID] {
				reqs = append(reqs, Request{Op: OpTransfer, File: f, Site: rr.Site, Priority: priority})
			}
		}
	}
	enqueueIn(s, t, reqs)
	return len(reqs), nil
}

// QueueDeletions queues, as part of the inventory write t, the deletion of
// every file the block replicas hold, and cancels their pending transfers.
// Detox calls it inside the store.Write that marks the replicas pending
// deletion. The daemon removes each file from its replica as it is deleted
// and the replica when its last file is gone. A replica that holds no file
// at all is deleted from the inventory here, in t; a replica that does not
// exist is skipped. It returns the number of deletions requested.
//
// It is the destructive choke point every deletion passes: the replicas
// are admitted in order by inventory.DeletionGuard on t's state, and if
// one would remove the last copy of its block (without AllowLastCopy) the
// whole call fails with an error wrapping inventory.ErrLastCopy and
// queues nothing.
func QueueDeletions(ctx context.Context, s *inventory.Store, t *inventory.Txn, reps []ReplicaRef, priority int) (int, error) {
	var reqs []Request
	var cancel []ReplicaRef
	guard := inventory.NewDeletionGuard(t)
	for _, rr := range reps {
		r, ok := t.BlockReplica(rr.Block, rr.Site)
		if !ok {
			continue // no replica: nothing to delete (queueing twice is fine)
		}
		if v := guard.Admit(rr.Block, rr.Site, rr.AllowLastCopy); !v.Allowed {
			return 0, inventory.LastCopyError(t, s.Snapshot().BlockFullName(rr.Block), rr.Site)
		}
		files, err := s.Files(ctx, rr.Block)
		if err != nil {
			return 0, fmt.Errorf("files of block %d: %w", rr.Block, err)
		}
		have := map[inventory.FileID]bool{}
		if !r.Complete {
			if have, err = presentSet(ctx, s, t, rr); err != nil {
				return 0, err
			}
			cancel = append(cancel, rr)
		}
		n := 0
		for _, f := range files {
			if r.Complete || have[f.ID] {
				reqs = append(reqs, Request{Op: OpDeletion, File: f, Site: rr.Site, Priority: priority})
				n++
			}
		}
		if n == 0 {
			if err := t.Add(inventory.DeleteBlockReplica{Block: rr.Block, Site: rr.Site}); err != nil {
				return 0, err
			}
			if b, ok := t.Block(rr.Block); ok {
				if err := dropEmptyDatasetReplica(s, t, b.Dataset, rr.Site); err != nil {
					return 0, err
				}
			}
		}
	}
	at := t.At()
	d := s.DB()
	t.Exec(func(ctx context.Context, tx *sqlx.Tx) error {
		// Transfers of files the replica does not hold yet get no deletion
		// to cancel them; cancel them per replica.
		for _, rr := range cancel {
			if _, err := tx.ExecContext(ctx, "UPDATE "+TableSubscriptions+" SET state = ?, live = NULL, updated = ?, message = ? "+
				"WHERE op = ? AND block_id = ? AND site_id = ? AND live = 1 AND state IN (?, ?, ?)",
				StateCancelled, at.Unix(), "replica queued for deletion", OpTransfer, rr.Block, rr.Site, StateNew, StateRetry, StateHeld); err != nil {
				return err
			}
		}
		_, err := Enqueue(ctx, d, tx, at, reqs)
		return err
	})
	return len(reqs), nil
}

func enqueueIn(s *inventory.Store, t *inventory.Txn, reqs []Request) {
	if len(reqs) == 0 {
		return
	}
	at, d := t.At(), s.DB()
	t.Exec(func(ctx context.Context, tx *sqlx.Tx) error {
		_, err := Enqueue(ctx, d, tx, at, reqs)
		return err
	})
}

func presentSet(ctx context.Context, s *inventory.Store, t *inventory.Txn, rr ReplicaRef) (map[inventory.FileID]bool, error) {
	have := map[inventory.FileID]bool{}
	if _, ok := t.BlockReplica(rr.Block, rr.Site); !ok {
		return have, nil
	}
	ids, err := s.ReplicaFileIDs(ctx, rr.Block, rr.Site)
	if err != nil {
		return nil, fmt.Errorf("files of block %d at site %d: %w", rr.Block, rr.Site, err)
	}
	for _, id := range ids {
		have[id] = true
	}
	return have, nil
}

// execN runs a statement and returns the rows it matched (the DB layer sets
// ClientFoundRows on MySQL so matched == affected on both dialects).
func execN(ctx context.Context, tx *sqlx.Tx, q string, args ...any) (int64, error) {
	r, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// cas moves subscription id from one of the states in from to the state
// set by set (an SQL SET list without "updated"), failing with ErrConflict
// when the row is not in an expected state.
func cas(ctx context.Context, tx *sqlx.Tx, now int64, id int64, from []State, set string, args ...any) error {
	q := "UPDATE " + TableSubscriptions + " SET " + set + ", updated = ? WHERE id = ? AND state IN (?" + repeatQ(len(from)-1) + ")"
	a := append(append([]any{}, args...), now, id)
	for _, s := range from {
		a = append(a, s)
	}
	n, err := execN(ctx, tx, q, a...)
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("%w: subscription %d is not %v", ErrConflict, id, from)
	}
	return nil
}

func repeatQ(n int) string {
	b := make([]byte, 0, 3*n)
	for i := 0; i < n; i++ {
		b = append(b, ", ?"...)
	}
	return string(b)
}
