package fileop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/inventory"
)

// finished is a result joined with its in-flight subscription.
type finished struct {
	r Result
	a *activeSub
}

type replicaKey struct {
	block inventory.BlockID
	site  inventory.SiteID
}

// commit records results in one inventory write: the subscription moves
// (inbatch -> done/retry/held, compare-and-set), the history rows, the
// per-source failure memory and, for successes, the inventory updates
// (files added to or removed from block replicas) all commit together.
// Results for subscriptions not in flight (duplicates reported again
// after a restart) are dropped.
//
// One bad result must not block the others (or the daemon, at every
// restart): when the write fails validation or a compare-and-set, the
// results are recorded one by one; a result the inventory still rejects is
// recorded without the inventory change (the history says why), and one
// whose row moved under us is dropped from the in-flight view.
func (d *Daemon) commit(ctx context.Context, rs []Result) error {
	var fs []finished
	seen := map[int64]bool{}
	d.mu.Lock()
	for _, r := range rs {
		if a, ok := d.active[r.SubID]; ok && a.batch == r.BatchID && !seen[r.SubID] {
			seen[r.SubID] = true
			fs = append(fs, finished{r, a})
		}
	}
	d.mu.Unlock()
	if len(fs) == 0 {
		return nil
	}
	t0 := time.Now()
	err := d.record(ctx, fs, "")
	if err != nil && len(fs) > 1 && (errors.Is(err, inventory.ErrInvalid) || errors.Is(err, ErrConflict)) {
		d.log.WithError(err).Warn("recording results together failed; recording them one by one")
		for _, f := range fs {
			if err := d.recordOne(ctx, f); err != nil {
				return err
			}
		}
		return nil
	}
	if len(fs) == 1 && err != nil && (errors.Is(err, inventory.ErrInvalid) || errors.Is(err, ErrConflict)) {
		return d.recordOne(ctx, fs[0])
	}
	d.log.WithField("results", len(fs)).WithField("seconds", time.Since(t0).Seconds()).Debug("recorded results")
	return err
}

func (d *Daemon) recordOne(ctx context.Context, f finished) error {
	err := d.record(ctx, []finished{f}, "")
	if errors.Is(err, inventory.ErrInvalid) {
		d.log.WithError(err).WithField("lfn", f.a.sub.LFN).Error("inventory rejected a finished operation; recording it without the inventory change")
		err = d.record(ctx, []finished{f}, "inventory rejected the update: "+err.Error())
	}
	if errors.Is(err, ErrConflict) {
		d.log.WithError(err).WithField("subscription", f.a.sub.ID).Error("result lost a compare-and-set; dropped")
		d.mu.Lock()
		d.dropActive(f.a)
		d.mu.Unlock()
		return nil
	}
	return err
}

// record writes fs in one transaction. A non-empty skipInventory records
// them without inventory updates, with that note.
func (d *Daemon) record(ctx context.Context, fs []finished, skipInventory string) error {
	now := d.now()
	_, err := d.writer.Write(ctx, now, func(t *inventory.Txn) error {
		notes := make([]string, len(fs))
		if skipInventory == "" {
			var err error
			if notes, err = d.inventoryUpdates(ctx, t, fs); err != nil {
				return err
			}
			if err := sourceMismatches(ctx, d.store.DB(), t, fs, d.cfg.SuspectAfterMismatches); err != nil {
				return err
			}
		} else {
			for i := range notes {
				notes[i] = skipInventory
			}
		}
		t.Exec(func(ctx context.Context, tx *sqlx.Tx) error { return d.recordResults(ctx, tx, now, fs, notes) })
		return nil
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	for _, f := range fs {
		d.dropActive(f.a)
	}
	d.mu.Unlock()
	for _, f := range fs {
		d.m.observe(f)
	}
	return nil
}

// inventoryUpdates adds to t the replica changes of the successful
// results. It returns a note per result ("" or why the inventory was not
// changed) for the history.
func (d *Daemon) inventoryUpdates(ctx context.Context, t *inventory.Txn, fs []finished) ([]string, error) {
	notes := make([]string, len(fs))
	byRep := map[replicaKey][]int{}
	var order []replicaKey
	for i, f := range fs {
		if f.r.Err != nil {
			continue
		}
		k := replicaKey{inventory.BlockID(f.a.sub.BlockID), inventory.SiteID(f.a.sub.SiteID)}
		if _, ok := byRep[k]; !ok {
			order = append(order, k)
		}
		byRep[k] = append(byRep[k], i)
	}
	for _, k := range order {
		idx := byRep[k]
		r, ok := t.BlockReplica(k.block, k.site)
		if !ok {
			for _, i := range idx {
				notes[i] = "no such block replica in the inventory; inventory unchanged"
			}
			continue
		}
		b, _ := t.Block(k.block)
		var tr, del []int
		for _, i := range idx {
			if fs[i].a.sub.Op == OpTransfer {
				tr = append(tr, i)
			} else {
				del = append(del, i)
			}
		}
		// A replica gets either transfers or deletions in practice; if
		// both finished in one commit, deletions win (Enqueue cancels the
		// transfers a deletion supersedes).
		if len(del) > 0 {
			for _, i := range tr {
				notes[i] = "replica is being deleted; inventory unchanged"
			}
			if err := d.applyDeletions(ctx, t, r, b, fs, del, notes); err != nil {
				return nil, err
			}
			continue
		}
		if err := d.applyTransfers(ctx, t, r, b, fs, tr, notes); err != nil {
			return nil, err
		}
	}
	return notes, nil
}

func (d *Daemon) applyTransfers(ctx context.Context, t *inventory.Txn, r inventory.BlockReplica, b inventory.Block, fs []finished, idx []int, notes []string) error {
	if r.Complete {
		for _, i := range idx {
			notes[i] = "replica already complete"
		}
		return nil
	}
	have, err := d.store.ReplicaFileIDs(ctx, r.Block, r.Site)
	if err != nil {
		return err
	}
	present := make(map[inventory.FileID]bool, len(have))
	for _, id := range have {
		present[id] = true
	}
	var add []inventory.FileID
	size, n := r.Size, r.NumFiles
	for _, i := range idx {
		id := inventory.FileID(fs[i].a.sub.FileID)
		if present[id] {
			notes[i] = "file was already in the replica"
			continue
		}
		present[id] = true
		add = append(add, id)
		size += fs[i].a.sub.Size
		n++
	}
	if len(add) == 0 {
		return nil
	}
	u := r
	u.LastUpdate = t.At().Unix()
	if n >= b.NumFiles {
		u.Complete, u.Size, u.NumFiles = true, b.Size, b.NumFiles
		return t.Add(inventory.UpsertBlockReplica{BlockReplica: u})
	}
	u.Size, u.NumFiles = min(size, b.Size), n
	return t.Add(inventory.SetReplicaFiles{Block: r.Block, Site: r.Site, Add: add}, inventory.UpsertBlockReplica{BlockReplica: u})
}

func (d *Daemon) applyDeletions(ctx context.Context, t *inventory.Txn, r inventory.BlockReplica, b inventory.Block, fs []finished, idx []int, notes []string) error {
	files, err := d.store.Files(ctx, r.Block)
	if err != nil {
		return err
	}
	present := map[inventory.FileID]inventory.File{}
	if r.Complete {
		for _, f := range files {
			present[f.ID] = f
		}
	} else {
		have, err := d.store.ReplicaFileIDs(ctx, r.Block, r.Site)
		if err != nil {
			return err
		}
		byID := make(map[inventory.FileID]inventory.File, len(files))
		for _, f := range files {
			byID[f.ID] = f
		}
		for _, id := range have {
			present[id] = byID[id]
		}
	}
	var removed []inventory.FileID
	for _, i := range idx {
		id := inventory.FileID(fs[i].a.sub.FileID)
		if _, ok := present[id]; !ok {
			notes[i] = "file was not in the replica"
			continue
		}
		delete(present, id)
		removed = append(removed, id)
	}
	if len(removed) == 0 {
		return nil
	}
	if len(present) == 0 {
		if err := t.Add(inventory.DeleteBlockReplica{Block: r.Block, Site: r.Site}); err != nil {
			return err
		}
		return dropEmptyDatasetReplica(d.store, t, b.Dataset, r.Site)
	}
	u := r
	u.LastUpdate = t.At().Unix()
	u.Complete, u.Size, u.NumFiles = false, 0, int32(len(present))
	for _, f := range present {
		u.Size += f.Size
	}
	set := inventory.SetReplicaFiles{Block: r.Block, Site: r.Site, Remove: removed}
	if r.Complete {
		// A complete replica has no file rows: list what remains.
		set = inventory.SetReplicaFiles{Block: r.Block, Site: r.Site}
		for _, f := range files {
			if _, ok := present[f.ID]; ok {
				set.Add = append(set.Add, f.ID)
			}
		}
	}
	return t.Add(set, inventory.UpsertBlockReplica{BlockReplica: u})
}

// recordResults moves each subscription and writes history; it runs
// inside the inventory write's transaction and is re-runnable.
// Successes move in one statement per note (chunked), failures one by one
// (they need per-row retry arithmetic), history rows in multi-row inserts.
func (d *Daemon) recordResults(ctx context.Context, tx *sqlx.Tx, now time.Time, fs []finished, notes []string) error {
	ts := now.Unix()
	batches := map[int64]bool{}
	done := map[string][]int64{}
	for i, f := range fs {
		s, r := f.a.sub, f.r
		batches[f.a.batch] = true
		if r.Err == nil {
			done[notes[i]] = append(done[notes[i]], s.ID)
			continue
		}
		msg := clip(failureMessage(f.a, r.Err))
		tries := s.Tries + 1
		var err error
		switch {
		case tries >= d.cfg.MaxTries:
			msg = clip(fmt.Sprintf("gave up after %d tries; last %s", tries, msg))
			err = cas(ctx, tx, ts, s.ID, []State{StateInBatch}, "state = ?, hold_reason = ?, tries = ?, message = ?", StateHeld, HoldAllFailed, tries, msg)
		case s.Op == OpDeletion && !r.Recoverable:
			err = cas(ctx, tx, ts, s.ID, []State{StateInBatch}, "state = ?, hold_reason = ?, tries = ?, message = ?", StateHeld, HoldIrrecoverable, tries, msg)
		default:
			next := now.Add(d.backoff(tries)).UnixNano()
			if !r.Recoverable {
				next = now.UnixNano() // another source may work now; selection holds the row if none
			}
			err = cas(ctx, tx, ts, s.ID, []State{StateInBatch}, "state = ?, tries = ?, next_try_ns = ?, message = ?", StateRetry, tries, next, msg)
		}
		if err == nil && s.Op == OpTransfer {
			err = d.noteSourceFailure(ctx, tx, s.ID, f.a.src, r)
		}
		if err != nil {
			return fmt.Errorf("subscription %d: %w", s.ID, err)
		}
	}
	for note, ids := range done {
		for start := 0; start < len(ids); start += 500 {
			chunk := ids[start:min(start+500, len(ids))]
			args := []any{StateDone, clip(note), ts, StateInBatch}
			for _, id := range chunk {
				args = append(args, id)
			}
			n, err := execN(ctx, tx, "UPDATE "+TableSubscriptions+" SET state = ?, live = NULL, hold_reason = '', message = ?, updated = ? "+
				"WHERE state = ? AND id IN (?"+repeatQ(len(chunk)-1)+")", args...)
			if err != nil {
				return err
			}
			if int(n) != len(chunk) {
				return fmt.Errorf("%w: %d of %d finished subscriptions were not inbatch", ErrConflict, len(chunk)-int(n), len(chunk))
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+TableForcedSources+" WHERE subscription_id IN (?"+repeatQ(len(chunk)-1)+")", args[4:]...); err != nil {
				return err
			}
		}
	}
	const histCols = 18
	for start := 0; start < len(fs); start += 200 {
		chunk := fs[start:min(start+200, len(fs))]
		q := "INSERT INTO " + TableHistory +
			" (subscription_id, op, file_id, lfn, source_site_id, site_id, source, destination, backend, outcome, mode, bytes, duration_ns, checksum, exit_code, code, message, finished) VALUES "
		args := make([]any, 0, histCols*len(chunk))
		for i, f := range chunk {
			if i > 0 {
				q += ", "
			}
			q += "(?" + repeatQ(histCols-1) + ")"
			s, r := f.a.sub, f.r
			outcome, msg := "done", notes[start+i]
			if r.Err != nil {
				outcome, msg = "failed", r.Err.Error()
			}
			args = append(args, s.ID, s.Op, s.FileID, s.LFN, f.a.src, s.SiteID, f.a.srcURL, f.a.dstURL, f.a.backend, outcome, r.Mode, r.Bytes,
				r.Duration.Nanoseconds(), string(r.Checksum), r.ExitCode, r.Code, clip(msg), ts)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("history: %w", err)
		}
	}
	for id := range batches {
		if _, err := tx.ExecContext(ctx, "UPDATE "+TableBatches+" SET state = 'closed', updated = ? WHERE id = ? AND state = 'open' AND NOT EXISTS (SELECT 1 FROM "+
			TableSubscriptions+" WHERE batch_id = ? AND state = ?)", ts, id, id, StateInBatch); err != nil {
			return err
		}
	}
	return nil
}

// failureMessage says why an operation failed, for people reading it
// through the REST API, the CLI and request reasons: from which source a
// transfer failed, and the backend's error with the sites' URLs and
// physical paths replaced by site:LFN (they are the sites' internals, and
// a local site's URL is a path on this host).
func failureMessage(a *activeSub, err error) string {
	msg := err.Error()
	for _, u := range []struct{ url, site string }{{a.srcURL, a.srcName}, {a.dstURL, a.dstName}} {
		if u.url == "" {
			continue
		}
		where := u.site + ":" + a.sub.LFN
		msg = strings.ReplaceAll(msg, u.url, where)
		if p, ok := strings.CutPrefix(u.url, "file://"); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, where)
		}
	}
	if a.sub.Op == OpTransfer && a.srcName != "" {
		return "from " + a.srcName + ": " + msg
	}
	return "at " + a.dstName + ": " + msg
}

func (d *Daemon) noteSourceFailure(ctx context.Context, tx *sqlx.Tx, sub int64, src int32, r Result) error {
	n, err := execN(ctx, tx, "UPDATE "+TableSourceFailures+" SET failures = failures + 1, recoverable = ?, code = ? WHERE subscription_id = ? AND source_site_id = ?",
		r.Recoverable, r.Code, sub, src)
	if err != nil || n > 0 {
		return err
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO "+TableSourceFailures+" (subscription_id, source_site_id, failures, recoverable, code) VALUES (?, ?, 1, ?, ?)",
		sub, src, r.Recoverable, r.Code)
	return err
}

// dropEmptyDatasetReplica deletes the replica of dataset ds at site once
// its last block replica is gone, unless it is growing (it then stands for
// blocks still to come). A non-growing dataset replica without blocks
// holds nothing, yet would still be listed as a copy at the site. It is
// called in the write that deletes a block replica, after that deletion.
func dropEmptyDatasetReplica(s *inventory.Store, t *inventory.Txn, ds inventory.DatasetID, site inventory.SiteID) error {
	snap := s.Snapshot()
	found := false
	for dr := range snap.DatasetReplicas(ds) {
		if dr.Site == site {
			if dr.Growing {
				return nil
			}
			found = true
		}
	}
	if !found {
		return nil
	}
	for b := range snap.Blocks(ds) {
		if t.HasBlockReplica(b.ID, site) {
			return nil
		}
	}
	return t.Add(inventory.DeleteDatasetReplica{Dataset: ds, Site: site})
}
