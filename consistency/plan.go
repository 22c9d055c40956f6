package consistency

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/inventory"
)

// Action kinds of a plan item (actions.ndjson).
const (
	ActTransfer       = "transfer"        // re-transfer a missing or corrupt file
	ActMarkIncomplete = "mark_incomplete" // the block replica loses the file
	ActDelete         = "delete"          // delete an orphan
	ActRmdir          = "rmdir"           // remove an empty directory
	ActNone           = "none"            // seen, deliberately not acted on (see reason)
)

// Reasons of plan items.
const (
	ReasonMissingConfirmed = "missing in two consecutive runs"
	ReasonMissingFirst     = "missing for the first time: waits for confirmation by the next run"
	ReasonCorruptConfirmed = "wrong size or checksum in two consecutive runs"
	ReasonCorruptFirst     = "wrong size or checksum for the first time: waits for confirmation"
	ReasonStalled          = "expected by an incomplete replica, absent, and no transfer in flight"
	ReasonOrphanOld        = "orphan older than the grace period"
	ReasonOrphanGrace      = "orphan within the grace period"
	ReasonOrphanNoTime     = "orphan without a modification time: never deleted automatically"
	ReasonOrphanLastCopy   = "last copy: a file of a block with no complete copy at a ready or waitroom site"
	ReasonSuspicious       = "replica flagged suspicious (checksum mismatches as a source, or declared bad): not counted as a copy, not a transfer source; clear with dynamo fileop clear-bad"
	ReasonEmptyDir         = "empty directory older than min_age"
	ReasonEmptyDirYoung    = "empty directory younger than min_age (or without a time)"
	ReasonEmptyDirsOff     = "clean_empty_dirs is off"
)

// PlanItem is one line of a run's action list.
type PlanItem struct {
	Action  string `json:"action"`
	Path    string `json:"path"`
	Size    int64  `json:"size,omitempty"`
	BlockID int32  `json:"block_id,omitempty"`
	Reason  string `json:"reason"`
}

// Plan is what a run will do (or, in dry-run, would do).
type Plan struct {
	// Alert is non-empty when a safety valve tripped: then nothing is done.
	Alert     string
	Items     []PlanItem
	Transfers []Transfer
	Deletions []Deletion
	Rmdirs    []string
	// Lost maps block ids to the confirmed missing/corrupt files to take out
	// of the site's replica.
	Lost map[inventory.BlockID][]int64
	// Seen are all file ids missing or corrupt in this run (recorded for
	// the next run's confirmation).
	Seen []int64
}

// CheckValves returns why a run with these counts must not act, or "".
// A zero limit disables that check. Missing counts include size and
// checksum mismatches and stalled files (they lead to transfers too); the
// missing fraction is of the files the inventory expects, the orphan
// fraction of the files listed.
func CheckValves(cfg Config, c Counts) string {
	missing := c.Missing + c.SizeMismatch + c.ChecksumMismatch + c.Stalled
	frac := func(n, of int64) float64 {
		if of == 0 {
			return 1
		}
		return float64(n) / float64(of)
	}
	switch {
	case cfg.MaxMissing > 0 && missing > cfg.MaxMissing:
		return fmt.Sprintf("%d missing, corrupt or stalled files exceed max_missing %d", missing, cfg.MaxMissing)
	case cfg.MaxMissingFraction > 0 && missing > 0 && frac(missing, c.ExpectedFiles) > cfg.MaxMissingFraction:
		return fmt.Sprintf("%d missing, corrupt or stalled of %d expected files exceed max_missing_fraction %g", missing, c.ExpectedFiles, cfg.MaxMissingFraction)
	case cfg.MaxOrphans > 0 && c.Orphans > cfg.MaxOrphans:
		return fmt.Sprintf("%d orphans exceed max_orphans %d", c.Orphans, cfg.MaxOrphans)
	case cfg.MaxOrphanFraction > 0 && c.Orphans > 0 && frac(c.Orphans, c.SiteFiles) > cfg.MaxOrphanFraction:
		return fmt.Sprintf("%d orphans of %d listed files exceed max_orphan_fraction %g", c.Orphans, c.SiteFiles, cfg.MaxOrphanFraction)
	}
	return ""
}

// plan reads the run's difference lists and decides what to do. Safety
// valves are checked first; the lists are then bounded by the limits.
func (c *Checker) plan(ctx context.Context, rec *RunRecord, si inventory.Site, sc SiteConfig, empty []EmptyDir, reportDir string, now int64) (*Plan, error) {
	p := &Plan{Lost: map[inventory.BlockID][]int64{}}
	if p.Alert = CheckValves(c.cfg, rec.Counts); p.Alert != "" {
		return p, nil
	}
	var bad []Difference
	corrupt := map[int64]bool{}
	for _, l := range []string{ListMissing, ListSizeMismatch, ListChecksumMismatch} {
		err := readNDJSON(filepath.Join(reportDir, l+".ndjson"), func(d Difference) error {
			bad = append(bad, d)
			if l != ListMissing {
				corrupt[d.FileID] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, d := range bad {
		p.Seen = append(p.Seen, d.FileID)
	}
	prev, err := previousRun(ctx, c.db, si.Name, rec.ID)
	if err != nil {
		return nil, err
	}
	confirmed, err := confirmedMissing(ctx, c.db, si.ID, prev, p.Seen)
	if err != nil {
		return nil, err
	}
	for _, d := range bad {
		reason := map[bool]string{true: ReasonMissingConfirmed, false: ReasonMissingFirst}[confirmed[d.FileID]]
		if corrupt[d.FileID] {
			reason = map[bool]string{true: ReasonCorruptConfirmed, false: ReasonCorruptFirst}[confirmed[d.FileID]]
		}
		if !confirmed[d.FileID] {
			p.Items = append(p.Items, PlanItem{Action: ActNone, Path: d.LFN, Size: d.Size, BlockID: d.BlockID, Reason: reason})
			continue
		}
		p.Lost[inventory.BlockID(d.BlockID)] = append(p.Lost[inventory.BlockID(d.BlockID)], d.FileID)
		p.Transfers = append(p.Transfers, Transfer{LFN: d.LFN, FileID: d.FileID, BlockID: d.BlockID, Size: d.Size, Adler32: d.Adler32, Overwrite: corrupt[d.FileID]})
		p.Items = append(p.Items,
			PlanItem{Action: ActMarkIncomplete, Path: d.LFN, Size: d.Size, BlockID: d.BlockID, Reason: reason},
			PlanItem{Action: ActTransfer, Path: d.LFN, Size: d.Size, BlockID: d.BlockID, Reason: reason})
	}
	// Stalled files: the replica already lacks them, only the transfer is
	// missing. Queueing is idempotent, so no confirmation is needed.
	err = readNDJSON(filepath.Join(reportDir, ListStalled+".ndjson"), func(d Difference) error {
		p.Transfers = append(p.Transfers, Transfer{LFN: d.LFN, FileID: d.FileID, BlockID: d.BlockID, Size: d.Size, Adler32: d.Adler32, Overwrite: d.SiteSize != nil})
		p.Items = append(p.Items, PlanItem{Action: ActTransfer, Path: d.LFN, Size: d.Size, BlockID: d.BlockID, Reason: ReasonStalled})
		return nil
	})
	if err != nil {
		return nil, err
	}
	grace := now - int64(c.cfg.OrphanGrace/time.Second)
	var old []Difference
	err = readNDJSON(filepath.Join(reportDir, ListOrphans+".ndjson"), func(d Difference) error {
		switch {
		case d.ModTime == 0:
			p.Items = append(p.Items, PlanItem{Action: ActNone, Path: d.LFN, Size: d.Size, Reason: ReasonOrphanNoTime})
		case d.ModTime > grace:
			p.Items = append(p.Items, PlanItem{Action: ActNone, Path: d.LFN, Size: d.Size, Reason: ReasonOrphanGrace})
		default:
			old = append(old, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	lastCopy, err := c.orphanLastCopies(ctx, old)
	if err != nil {
		return nil, err
	}
	for _, d := range old {
		if b, ok := lastCopy[d.LFN]; ok {
			p.Items = append(p.Items, PlanItem{Action: ActNone, Path: d.LFN, Size: d.Size, BlockID: int32(b), Reason: ReasonOrphanLastCopy})
			continue
		}
		p.Deletions = append(p.Deletions, Deletion{LFN: d.LFN, Size: d.Size})
		p.Items = append(p.Items, PlanItem{Action: ActDelete, Path: d.LFN, Size: d.Size, Reason: ReasonOrphanOld})
	}
	// Suspicious replicas at the site are listed for the operator: their
	// files are checked like any others, but nothing else trusts them.
	if c.store != nil {
		snap := c.store.Snapshot()
		for r := range snap.BlockReplicasAtSite(si.ID) {
			if r.Suspicious {
				p.Items = append(p.Items, PlanItem{Action: ActNone, Path: snap.BlockFullName(r.Block), Size: r.Size, BlockID: int32(r.Block), Reason: ReasonSuspicious})
			}
		}
	}
	minAge := now - int64(c.cfg.MinAge/time.Second)
	// Deepest first, so that a parent emptied by its children's removal is
	// at least not tried before them (it is removed by the next run).
	slices.SortFunc(empty, func(a, b EmptyDir) int { return len(b.Path) - len(a.Path) })
	for _, e := range empty {
		switch {
		case !c.cfg.CleanEmptyDirs:
			p.Items = append(p.Items, PlanItem{Action: ActNone, Path: e.Path, Reason: ReasonEmptyDirsOff})
		case e.ModTime == 0 || e.ModTime > minAge || slices.Contains(sc.Paths, e.Path):
			p.Items = append(p.Items, PlanItem{Action: ActNone, Path: e.Path, Reason: ReasonEmptyDirYoung})
		default:
			p.Rmdirs = append(p.Rmdirs, e.Path)
			p.Items = append(p.Items, PlanItem{Action: ActRmdir, Path: e.Path, Reason: ReasonEmptyDir})
		}
	}
	return p, nil
}

// orphanLastCopies applies the last-copy rule to orphans: an orphan that
// is a file of an inventory block (a copy the inventory does not record
// at this site) is kept when the block has no copy that
// inventory.CountsAsCopy (complete, not suspicious, not pending deletion,
// at a ready or waitroom site): it may be the only data left. It returns
// those LFNs with their block.
func (c *Checker) orphanLastCopies(ctx context.Context, orphans []Difference) (map[string]inventory.BlockID, error) {
	out := map[string]inventory.BlockID{}
	if len(orphans) == 0 || c.store == nil {
		return out, nil
	}
	lfns := make([]string, len(orphans))
	for i, d := range orphans {
		lfns[i] = d.LFN
	}
	blocks, err := c.store.BlocksOfLFNs(ctx, lfns)
	if err != nil {
		return nil, fmt.Errorf("orphans known to the inventory: %w", err)
	}
	snap := c.store.Snapshot()
	for lfn, b := range blocks {
		if inventory.UsableCopies(snap, b, 0) == 0 {
			out[lfn] = b
		}
	}
	return out, nil
}

// apply executes a plan: the one destructive choke point, which honours
// dry-run. The inventory is updated before transfers are queued, so that a
// transfer never lands on a replica that still claims the file.
func (c *Checker) apply(ctx context.Context, log *logrus.Entry, rec *RunRecord, si inventory.Site, drv driver.Driver, p *Plan) error {
	if rec.DryRun {
		log.WithField("transfers", len(p.Transfers)).WithField("deletions", len(p.Deletions)).
			WithField("rmdirs", len(p.Rmdirs)).WithField("replicas", len(p.Lost)).Info("dry run: nothing done")
		return nil
	}
	transfers := p.Transfers
	if len(p.Lost) > 0 {
		// With a TxnQueuer the transfers of the lost files commit with the
		// inventory change; the rest (stalled files) are queued after.
		var withTxn []Transfer
		if _, ok := c.actions.(TxnQueuer); ok {
			transfers = nil
			for _, tr := range p.Transfers {
				if slices.Contains(p.Lost[inventory.BlockID(tr.BlockID)], tr.FileID) {
					withTxn = append(withTxn, tr)
				} else {
					transfers = append(transfers, tr)
				}
			}
		}
		n, queued, err := c.markIncomplete(ctx, si, p.Lost, withTxn)
		if err != nil {
			return fmt.Errorf("mark replicas incomplete: %w", err)
		}
		rec.ReplicasUpdated = int64(n)
		rec.TransfersQueued += int64(queued)
	}
	if len(transfers) > 0 {
		if err := c.actions.QueueTransfers(ctx, si.Name, transfers); err != nil {
			return fmt.Errorf("queue transfers: %w", err)
		}
		rec.TransfersQueued += int64(len(transfers))
	}
	if len(p.Deletions) > 0 {
		if q, ok := c.actions.(DeletionQueuer); ok {
			if err := q.QueueDeletions(ctx, si.Name, p.Deletions); err != nil {
				return fmt.Errorf("queue deletions: %w", err)
			}
			rec.DeletionsQueued = int64(len(p.Deletions))
		} else {
			rec.DeletionsQueued = c.removeOrphans(ctx, log, drv, p.Deletions)
		}
	}
	for _, d := range p.Rmdirs {
		// Rmdir refuses a directory that is not empty, so a file written
		// since the listing is never lost.
		err := drv.Rmdir(ctx, d)
		switch {
		case err == nil:
			rec.DirsRemoved++
		case errors.Is(err, driver.ErrNotEmpty) || errors.Is(err, driver.ErrNotFound):
		default:
			log.WithError(err).WithField("dir", d).Warn("cannot remove empty directory")
		}
	}
	return recordMissing(ctx, c.db, si.ID, rec.ID, p.Seen)
}

// removeOrphans deletes orphans through the site's driver, a few at a
// time, and returns how many are gone. A file already gone counts; other
// failures are logged and left for the next run.
func (c *Checker) removeOrphans(ctx context.Context, log *logrus.Entry, drv driver.Driver, dels []Deletion) int64 {
	var done atomic.Int64
	sem := make(chan struct{}, c.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, d := range dels {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := drv.Remove(ctx, d.LFN)
			switch {
			case err == nil || errors.Is(err, driver.ErrNotFound):
				done.Add(1)
			default:
				log.WithError(err).WithField("lfn", d.LFN).Warn("cannot delete orphan")
			}
		}()
	}
	wg.Wait()
	return done.Load()
}

// markIncomplete takes lost files out of the site's block replicas in one
// inventory write: each replica becomes incomplete with the files still
// present listed, and its size and count reduced accordingly. withTxn are
// transfers to queue in the same write (c.actions is then a TxnQueuer);
// those of replicas that went away meanwhile are dropped. It returns the
// replicas changed and the transfers queued.
func (c *Checker) markIncomplete(ctx context.Context, si inventory.Site, lost map[inventory.BlockID][]int64, withTxn []Transfer) (int, int, error) {
	snap := c.store.Snapshot()
	type change struct {
		up  inventory.UpsertBlockReplica
		set inventory.SetReplicaFiles
	}
	var changes []change
	blocks := make([]inventory.BlockID, 0, len(lost))
	for b := range lost {
		blocks = append(blocks, b)
	}
	slices.Sort(blocks)
	for _, b := range blocks {
		r, ok := snap.BlockReplica(b, si.ID)
		if !ok {
			continue // the replica went away since the diff
		}
		files, err := c.store.Files(ctx, b)
		if err != nil {
			return 0, 0, err
		}
		present := map[inventory.FileID]bool{}
		if r.Complete {
			for _, f := range files {
				present[f.ID] = true
			}
		} else {
			ids, err := c.store.ReplicaFileIDs(ctx, b, si.ID)
			if err != nil {
				return 0, 0, err
			}
			for _, id := range ids {
				present[id] = true
			}
		}
		ch := change{set: inventory.SetReplicaFiles{Block: b, Site: si.ID}}
		for _, id := range lost[b] {
			if present[inventory.FileID(id)] {
				delete(present, inventory.FileID(id))
				if !r.Complete {
					ch.set.Remove = append(ch.set.Remove, inventory.FileID(id))
				}
			}
		}
		nr := r
		nr.Complete, nr.Size, nr.NumFiles, nr.LastUpdate = false, 0, 0, c.Now().Unix()
		for _, f := range files {
			if present[f.ID] {
				nr.Size += f.Size
				nr.NumFiles++
				if r.Complete {
					ch.set.Add = append(ch.set.Add, f.ID)
				}
			}
		}
		ch.up = inventory.UpsertBlockReplica{BlockReplica: nr}
		changes = append(changes, ch)
	}
	if len(changes) == 0 {
		return 0, 0, nil
	}
	kept := withTxn[:0:0]
	for _, tr := range withTxn {
		if slices.ContainsFunc(changes, func(ch change) bool { return ch.up.Block == inventory.BlockID(tr.BlockID) }) {
			kept = append(kept, tr)
		}
	}
	_, err := c.store.Write(ctx, c.Now(), func(t *inventory.Txn) error {
		for _, ch := range changes {
			if err := t.Add(ch.up, ch.set); err != nil {
				return err
			}
		}
		if len(kept) > 0 {
			return c.actions.(TxnQueuer).QueueTransfersTxn(t, si.ID, kept)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return len(changes), len(kept), nil
}
