package detox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/inventory"
)

// ErrCapExceeded: the plan deletes more than a per-cycle cap allows. Apply
// refuses the whole plan; nothing is written.
var ErrCapExceeded = errors.New("detox deletion cap exceeded")

// FileDeletion is one file to remove physically from a site.
type FileDeletion struct {
	Site    string
	LFN     string
	FileID  inventory.FileID
	Size    int64
	Block   string // dataset#block
	CycleID int64  // detox cycle that decided it, 0 if not recorded
	// LastCopy: the block keeps no other copy; the queue must pass the
	// partition's opt-in on to its own last-copy check.
	LastCopy bool
}

// DeletionQueue hands file deletions to the file-operation daemon. It must
// be idempotent (queuing a file already queued for the same site is not an
// error) because Apply may be retried after a partial failure.
type DeletionQueue interface {
	QueueDeletions(ctx context.Context, dels []FileDeletion) error
}

// MemQueue is a DeletionQueue held in memory, for tests and dry tools.
// Safe for concurrent use.
type MemQueue struct {
	mu    sync.Mutex
	seen  map[string]bool
	Items []FileDeletion
}

// QueueDeletions implements DeletionQueue (idempotent by site and LFN).
func (q *MemQueue) QueueDeletions(_ context.Context, dels []FileDeletion) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.seen == nil {
		q.seen = map[string]bool{}
	}
	for _, d := range dels {
		k := d.Site + "\x00" + d.LFN
		if !q.seen[k] {
			q.seen[k] = true
			q.Items = append(q.Items, d)
		}
	}
	return nil
}

// ApplyOptions parameterize Apply.
type ApplyOptions struct {
	// DryRun checks everything and reports what would be deleted, writing
	// nothing and queuing nothing.
	DryRun bool
	// MaxVolume caps the bytes of the whole plan (0: no cap).
	MaxVolume int64
	// MaxFilesPerSite caps the files deleted at any one site (0: no cap).
	MaxFilesPerSite int64
	// AllowLastCopyDeletion must match the PlanOptions the plan was made
	// with: the last-copy rule is re-checked against the current state,
	// and only deletions the plan marked LastCopy may remove a last copy.
	AllowLastCopyDeletion bool
	// MaxLastCopyVolume and MaxLastCopyReplicas cap the plan's LastCopy
	// deletions (0: no cap of that kind; with the opt-in, configuration
	// requires at least one).
	MaxLastCopyVolume   int64
	MaxLastCopyReplicas int
	// Locks are re-read at apply time (nil: no locks).
	Locks LockSource
	// Queue receives the file deletions; required unless DryRun.
	Queue DeletionQueue
	// CycleID is recorded with each file deletion.
	CycleID int64
	// At is the time recorded with the inventory changes (zero: now).
	At  time.Time
	Log *logrus.Entry
}

// Skipped is a planned deletion Apply did not carry out, with the reason.
type Skipped struct {
	Deletion
	Why Reason
}

// ApplyResult says what Apply did (or, in a dry run, would do).
type ApplyResult struct {
	DryRun  bool
	Deleted []Deletion
	Reowned []Reassignment // block replicas handed to the dataset owner
	Skipped []Skipped
	Bytes   int64
	Files   int64
	// LastCopies counts the deleted replicas that were the last copy of
	// their block (the partition's opt-in).
	LastCopies int
	PerSite    map[inventory.SiteID]SiteTotals
}

// SiteTotals are the deletions at one site.
type SiteTotals struct {
	Replicas int
	Bytes    int64
	Files    int64
}

// Reasons only Apply gives.
const (
	ReasonGone    Reason = "replica gone or already pending deletion"
	ReasonChanged Reason = "replica changed since the plan"
)

// Apply executes a plan through the one destructive choke point: caps first
// (a plan above a cap is refused whole, ErrCapExceeded), then every deletion
// is re-checked against the store's current state (the replica still
// exists unchanged, is not locked, and passes inventory.DeletionGuard in
// the plan's deletion order: a last copy goes only if the plan marked it
// LastCopy and opts allow it), then in one inventory write the surviving block replicas
// become pending deletion (they leave their owner's quota at once) and the
// plan's re-owned block replicas change owner (if still owned as planned),
// and finally the deleted replicas' files are queued for physical removal.
//
// If queuing fails after the write, the replicas stay pending deletion and
// the error is returned; re-queuing them is safe (DeletionQueue is
// idempotent). With DryRun nothing is written or queued.
func Apply(ctx context.Context, store *inventory.Store, plan *Plan, opts ApplyOptions) (*ApplyResult, error) {
	return ApplyTo(ctx, StoreTarget(store, opts.At), plan, opts)
}

// FileLister reads the files of block replicas (*inventory.Store is one).
type FileLister interface {
	Files(ctx context.Context, block inventory.BlockID) ([]inventory.File, error)
	ReplicaFileIDs(ctx context.Context, block inventory.BlockID, site inventory.SiteID) ([]inventory.FileID, error)
}

// Target is where Apply writes: the current state to re-check against, the
// one inventory commit (a store's Write, or a scheduler writer's
// Env.Commit, which fences the write with the writer lease) and the files.
type Target struct {
	Snapshot *inventory.Snapshot
	Commit   func(ctx context.Context, fn func(*inventory.Txn) error) (inventory.WriteResult, error)
	Files    FileLister
}

// StoreTarget applies straight to a store, at time at (zero: now).
func StoreTarget(store *inventory.Store, at time.Time) Target {
	return Target{Snapshot: store.Snapshot(), Files: store,
		Commit: func(ctx context.Context, fn func(*inventory.Txn) error) (inventory.WriteResult, error) {
			if at.IsZero() {
				at = time.Now()
			}
			return store.Write(ctx, at, fn)
		}}
}

// ApplyTo is Apply against any Target; tgt.Snapshot must be current (taken
// after the plan's snapshot, under the same writer).
func ApplyTo(ctx context.Context, tgt Target, plan *Plan, opts ApplyOptions) (*ApplyResult, error) {
	res := &ApplyResult{DryRun: opts.DryRun, PerSite: map[inventory.SiteID]SiteTotals{}}
	if err := checkCaps(plan, opts); err != nil {
		return nil, err
	}
	if opts.At.IsZero() {
		opts.At = time.Now()
	}
	snap := tgt.Snapshot
	locks, err := activeLocks(ctx, snap, opts.Locks, opts.At)
	if err != nil {
		return nil, err
	}
	// The last-copy rule against the current state, in the order the plan
	// deleted (so the plan's own earlier deletions count as gone). A last
	// copy goes only if the plan marked it and the partition still opts in.
	order := make([]int, len(plan.Deletions))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return plan.Deletions[a].Seq - plan.Deletions[b].Seq })
	why := make([]Reason, len(plan.Deletions))
	// A plan of a whole partition deletes millions of replicas: past a
	// tenth of the blocks, the guard's per-block array (8 bytes per block)
	// is cheaper than its maps.
	guard := inventory.NewDeletionGuard(snap)
	if nb := int(snap.Counts().Blocks); len(plan.Deletions) > nb/10 && len(plan.Deletions) > 10_000 {
		guard = inventory.NewBulkDeletionGuard(snap, nb+1)
	}
	for _, i := range order {
		d := plan.Deletions[i]
		cur, ok := snap.BlockReplica(d.Block, d.Site)
		switch {
		case !ok || cur.PendingDeletion:
			why[i] = ReasonGone
		case cur.Size != d.Size:
			why[i] = ReasonChanged
		case locks.protects(d.Dataset, d.Block, d.Site, cur.Group):
			why[i] = ReasonLocked
		default:
			if v := guard.Admit(d.Block, d.Site, opts.AllowLastCopyDeletion && d.LastCopy); !v.Allowed {
				why[i] = ReasonLastCopy
			}
		}
	}
	for i, d := range plan.Deletions {
		if why[i] != "" {
			res.Skipped = append(res.Skipped, Skipped{d, why[i]})
			continue
		}
		if d.LastCopy {
			res.LastCopies++
		}
		res.Deleted = append(res.Deleted, d)
		res.Bytes += d.Size
		res.Files += int64(d.Files)
		t := res.PerSite[d.Site]
		t.Replicas++
		t.Bytes += d.Size
		t.Files += int64(d.Files)
		res.PerSite[d.Site] = t
	}
	for _, ra := range plan.Reassignments {
		// A hand-over destroys nothing; it only needs the replica as planned.
		if cur, ok := snap.BlockReplica(ra.Block, ra.Site); ok && !cur.PendingDeletion && cur.Group == ra.From {
			res.Reowned = append(res.Reowned, ra)
		}
	}
	if opts.DryRun || len(res.Deleted)+len(res.Reowned) == 0 {
		return res, nil
	}
	if opts.Queue == nil && len(res.Deleted) > 0 {
		return nil, fmt.Errorf("detox apply: no deletion queue configured")
	}
	files, err := collectFiles(ctx, tgt.Files, snap, res.Deleted, opts.CycleID)
	if err != nil {
		return nil, err
	}
	if _, err := tgt.Commit(ctx, func(t *inventory.Txn) error {
		touched := map[ReplicaKey]bool{}
		for _, d := range res.Deleted {
			cur, ok := t.BlockReplica(d.Block, d.Site)
			if !ok || cur.PendingDeletion {
				continue // raced with another writer: nothing to mark
			}
			cur.PendingDeletion = true
			if err := t.Add(inventory.UpsertBlockReplica{BlockReplica: cur}); err != nil {
				return fmt.Errorf("mark %s at site %d pending deletion: %w", snap.BlockFullName(d.Block), d.Site, err)
			}
			touched[ReplicaKey{d.Dataset, d.Site}] = true
		}
		for _, ra := range res.Reowned {
			cur, ok := t.BlockReplica(ra.Block, ra.Site)
			if !ok || cur.PendingDeletion || cur.Group != ra.From {
				continue // changed meanwhile: leave it
			}
			cur.Group = ra.To
			if err := t.Add(inventory.UpsertBlockReplica{BlockReplica: cur}); err != nil {
				return fmt.Errorf("re-own %s at site %d: %w", snap.BlockFullName(ra.Block), ra.Site, err)
			}
		}
		return stopGrowing(t, snap, touched, res.Deleted)
	}); err != nil {
		return nil, fmt.Errorf("detox apply: %w", err)
	}
	if len(files) == 0 {
		return res, nil
	}
	if err := opts.Queue.QueueDeletions(ctx, files); err != nil {
		return res, fmt.Errorf("detox apply: replicas are pending deletion but queuing %d file deletions failed: %w", len(files), err)
	}
	if opts.Log != nil {
		opts.Log.WithField("replicas", len(res.Deleted)).WithField("bytes", res.Bytes).WithField("files", len(files)).
			WithField("skipped", len(res.Skipped)).Info("detox plan applied")
	}
	return res, nil
}

// checkCaps refuses a plan whose volume or per-site file count exceeds the
// caps. It looks at the whole plan, before any re-check trims it, so that a
// runaway policy is stopped rather than partly executed.
func checkCaps(plan *Plan, opts ApplyOptions) error {
	var lastBytes int64
	lastReps := 0
	for _, d := range plan.Deletions {
		if d.LastCopy {
			lastBytes += d.Size
			lastReps++
		}
	}
	if lastReps > 0 && !opts.AllowLastCopyDeletion {
		return fmt.Errorf("%w: plan deletes %d last copies but partition %s does not allow it", ErrCapExceeded, lastReps, plan.Partition)
	}
	if opts.MaxLastCopyVolume > 0 && lastBytes > opts.MaxLastCopyVolume {
		return fmt.Errorf("%w: plan deletes %d bytes of last copies, cap %d (partition %s)", ErrCapExceeded, lastBytes, opts.MaxLastCopyVolume, plan.Partition)
	}
	if opts.MaxLastCopyReplicas > 0 && lastReps > opts.MaxLastCopyReplicas {
		return fmt.Errorf("%w: plan deletes %d last copies, cap %d (partition %s)", ErrCapExceeded, lastReps, opts.MaxLastCopyReplicas, plan.Partition)
	}
	if opts.MaxVolume > 0 {
		if v := plan.DeletedBytes(); v > opts.MaxVolume {
			return fmt.Errorf("%w: plan deletes %d bytes, cap %d (partition %s)", ErrCapExceeded, v, opts.MaxVolume, plan.Partition)
		}
	}
	if opts.MaxFilesPerSite > 0 {
		per := map[inventory.SiteID]int64{}
		for _, d := range plan.Deletions {
			per[d.Site] += int64(d.Files)
		}
		for _, s := range plan.Sites {
			if per[s.Site] > opts.MaxFilesPerSite {
				return fmt.Errorf("%w: plan deletes %d files at %s, cap %d (partition %s)", ErrCapExceeded, per[s.Site], s.Name, opts.MaxFilesPerSite, plan.Partition)
			}
		}
	}
	return nil
}

// activeLocks resolves the locks of src active at at against snap.
func activeLocks(ctx context.Context, snap *inventory.Snapshot, src LockSource, at time.Time) (lockIndex, error) {
	var locks []Lock
	if src != nil {
		var err error
		if locks, err = src.ActiveLocks(ctx, at); err != nil {
			return lockIndex{}, fmt.Errorf("detox locks: %w", err)
		}
	}
	return newLockIndex(snap, locks, at)
}

// collectFiles lists the files to remove: every file of a complete replica,
// the present ones of an incomplete replica.
func collectFiles(ctx context.Context, store FileLister, snap *inventory.Snapshot, dels []Deletion, cycle int64) ([]FileDeletion, error) {
	var out []FileDeletion
	for _, d := range dels {
		site, _ := snap.Site(d.Site)
		cur, _ := snap.BlockReplica(d.Block, d.Site)
		files, err := store.Files(ctx, d.Block)
		if err != nil {
			return nil, fmt.Errorf("files of %s: %w", snap.BlockFullName(d.Block), err)
		}
		var present map[inventory.FileID]bool
		if !cur.Complete {
			ids, err := store.ReplicaFileIDs(ctx, d.Block, d.Site)
			if err != nil {
				return nil, fmt.Errorf("files of %s at %s: %w", snap.BlockFullName(d.Block), site.Name, err)
			}
			present = make(map[inventory.FileID]bool, len(ids))
			for _, id := range ids {
				present[id] = true
			}
		}
		name := snap.BlockFullName(d.Block)
		for _, f := range files {
			if present != nil && !present[f.ID] {
				continue
			}
			out = append(out, FileDeletion{Site: site.Name, LFN: f.LFN, FileID: f.ID, Size: f.Size, Block: name, CycleID: cycle, LastCopy: d.LastCopy})
		}
	}
	return out, nil
}

// stopGrowing turns off growth of the dataset replicas this apply empties
// (every block replica now pending deletion), so that new blocks of the
// dataset are not placed where the dataset is being deleted (Dynamo did the
// same).
func stopGrowing(t *inventory.Txn, snap *inventory.Snapshot, touched map[ReplicaKey]bool, dels []Deletion) error {
	gone := make(map[[2]int64]bool, len(dels))
	for _, d := range dels {
		gone[[2]int64{int64(d.Block), int64(d.Site)}] = true
	}
	for k := range touched {
		var dr inventory.DatasetReplica
		found := false
		for r := range snap.DatasetReplicas(k.Dataset) {
			if r.Site == k.Site {
				dr, found = r, true
				break
			}
		}
		if !found || !dr.Growing {
			continue
		}
		empty := true
		for b := range snap.Blocks(k.Dataset) {
			if br, ok := t.BlockReplica(b.ID, k.Site); ok && !br.PendingDeletion && !gone[[2]int64{int64(b.ID), int64(k.Site)}] {
				empty = false
				break
			}
		}
		if empty {
			dr.Growing = false
			if err := t.Add(inventory.UpsertDatasetReplica{DatasetReplica: dr}); err != nil {
				return fmt.Errorf("stop growth of dataset %d at site %d: %w", k.Dataset, k.Site, err)
			}
		}
	}
	return nil
}
