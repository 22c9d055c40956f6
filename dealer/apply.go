package dealer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/inventory"
)

// ApplyOptions parameterize Apply.
type ApplyOptions struct {
	// DryRun records the plan (status dry-run) and changes nothing else.
	DryRun bool
	// At is the time recorded with the inventory changes; zero: time.Now().
	At time.Time
}

// ApplyResult says what Apply did.
type ApplyResult struct {
	CycleID    int64         `json:"cycle_id"` // 0 without History
	Copies     int           `json:"copies"`   // copies applied
	Replicas   int           `json:"block_replicas"`
	Reassigned int           `json:"reassigned_block_replicas"`
	Transfers  int           `json:"transfers"`
	Requests   int           `json:"request_updates"`
	Skipped    []SkippedCopy `json:"skipped,omitempty"`
}

// SkippedCopy is a planned copy that Apply's re-check refused.
type SkippedCopy struct {
	Copy   int    `json:"copy"` // index into Plan.Copies
	Reason Reason `json:"reason"`
	Detail string `json:"detail"`
}

// Apply executes a plan: it records the cycle, re-checks every copy
// against the current inventory (the plan may be older than the store),
// writes the projected replicas in one inventory write, queues the block
// transfers, updates the copy requests and marks the cycle applied.
//
// The re-check refuses (ReasonStale) copies whose dataset or destination
// is gone, whose destination is no longer ready, or that would now take
// the destination past its quota; blocks that meanwhile got a replica are
// left alone. Transfers are queued after the inventory write commits: if
// queueing fails, the projected replicas stay and Apply returns the error
// with the cycle marked failed; TransferQueue implementations are
// idempotent, so re-queueing the same cycle is safe.
func (d *Dealer) Apply(ctx context.Context, store *inventory.Store, plan *Plan, opts ApplyOptions) (*ApplyResult, error) {
	if opts.At.IsZero() {
		opts.At = time.Now()
	}
	return d.ApplyTo(ctx, StoreTarget(store, opts.At), plan, opts)
}

// Target is where Apply writes: the current inventory state, a way to
// commit one inventory transaction, and the files of a block. StoreTarget
// builds it from a Store; the scheduler's writer slot provides its own
// Commit (scheduler.Env.Commit with MultiCommit) so that the Dealer writes
// under the scheduler's lease.
type Target struct {
	// Snapshot is the state the plan is re-checked against: the latest
	// state, taken while holding the writer slot.
	Snapshot *inventory.Snapshot
	// Commit applies fn in one inventory transaction.
	Commit func(ctx context.Context, fn func(*inventory.Txn) error) (inventory.WriteResult, error)
	// Files returns the files of a block (for the transfers).
	Files func(ctx context.Context, b inventory.BlockID) ([]inventory.File, error)
}

// StoreTarget is the Target of a Store, writing with time at.
func StoreTarget(store *inventory.Store, at time.Time) Target {
	return Target{
		Snapshot: store.Snapshot(),
		Commit: func(ctx context.Context, fn func(*inventory.Txn) error) (inventory.WriteResult, error) {
			return store.Write(ctx, at, fn)
		},
		Files: store.Files,
	}
}

// ErrNoTransferQueue: Apply was asked to create replicas that nothing would
// ever fill, because the Dealer has no TransferQueue.
var ErrNoTransferQueue = errors.New("no transfer queue: copies can only be planned (dry run)")

// HasTransferQueue reports whether Apply can make copies (Deps.Transfers is
// set); without one only dry runs and reassignments make sense.
func (d *Dealer) HasTransferQueue() bool { return d.deps.Transfers != nil }

// ApplyTo is Apply on an explicit Target. Without a TransferQueue, a plan
// with copies is refused with ErrNoTransferQueue (nothing recorded).
func (d *Dealer) ApplyTo(ctx context.Context, tgt Target, plan *Plan, opts ApplyOptions) (_ *ApplyResult, err error) {
	if opts.At.IsZero() {
		opts.At = time.Now()
	}
	defer func() {
		status := CycleApplied
		switch {
		case err != nil:
			status = CycleFailed
		case opts.DryRun:
			status = CycleDryRun
		}
		// The cycle started when its plan was made (plan.Now).
		took := time.Duration(0)
		if !plan.Now.IsZero() {
			took = time.Since(plan.Now)
		}
		d.deps.Metrics.observe(plan, status, took, time.Now())
	}()
	if !opts.DryRun && d.deps.Transfers == nil {
		for _, c := range plan.Copies {
			if !c.Reassign {
				return &ApplyResult{}, ErrNoTransferQueue
			}
		}
	}
	res := &ApplyResult{}
	h := d.deps.History
	if opts.DryRun {
		if h != nil {
			id, err := h.Record(ctx, plan, CycleDryRun, opts.At)
			res.CycleID = id
			return res, err
		}
		return res, nil
	}
	if h != nil {
		id, err := h.Record(ctx, plan, CyclePlanned, opts.At)
		if err != nil {
			return res, err
		}
		res.CycleID = id
	}
	err = d.apply(ctx, tgt, plan, opts, res)
	if h != nil {
		status := CycleApplied
		if err != nil {
			status = CycleFailed
		}
		if ferr := h.Finish(context.WithoutCancel(ctx), res.CycleID, status, time.Now(), err); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}
	if d.log != nil {
		d.log.WithField("cycle", res.CycleID).WithField("copies", res.Copies).WithField("block_replicas", res.Replicas).
			WithField("transfers", res.Transfers).WithField("skipped", len(res.Skipped)).WithError(err).Info("dealer cycle applied")
	}
	return res, err
}

func (d *Dealer) apply(ctx context.Context, tgt Target, plan *Plan, opts ApplyOptions, res *ApplyResult) error {
	cur := tgt.Snapshot
	part, ok := cur.PartitionByName(plan.Partition)
	if !ok {
		return fmt.Errorf("apply: partition %q is gone", plan.Partition)
	}
	// created[i]: the blocks actually created for plan.Copies[i].
	created := make([][]inventory.BlockID, len(plan.Copies))
	_, err := tgt.Commit(ctx, func(t *inventory.Txn) error {
		res.Skipped, res.Replicas, res.Reassigned, res.Copies = nil, 0, 0, 0
		added := map[inventory.SiteID]int64{}
		for i := range plan.Copies {
			created[i] = nil
			c := &plan.Copies[i]
			skip := func(detail string, args ...any) {
				res.Skipped = append(res.Skipped, SkippedCopy{Copy: i, Reason: ReasonStale, Detail: fmt.Sprintf(detail, args...)})
			}
			site, ok := cur.Site(c.Site)
			if !ok {
				skip("site %s is gone", c.SiteName)
				continue
			}
			if _, ok := cur.Dataset(c.Dataset); !ok {
				skip("dataset %s is gone", c.DatasetName)
				continue
			}
			if site.Status != inventory.SiteReady {
				skip("site %s is %s", site.Name, site.Status)
				continue
			}
			u := cur.Usage(c.Site, part.ID)
			if c.Bytes > 0 && u.Projected+added[c.Site]+c.Bytes > u.Quota {
				skip("%s would pass its quota: projected %s + %s > %s", site.Name,
					bytesize.Format(u.Projected+added[c.Site]), bytesize.Format(c.Bytes), bytesize.Format(u.Quota))
				continue
			}
			gid, ok := t.GroupID(c.Group)
			if !ok {
				skip("group %s is gone", c.Group)
				continue
			}
			n, err := d.applyCopy(t, cur, c, gid, opts.At, &created[i])
			if err != nil {
				return fmt.Errorf("copy %s to %s: %w", c.DatasetName, c.SiteName, err)
			}
			if n == 0 {
				continue
			}
			added[c.Site] += c.Bytes
			res.Copies++
			if c.Reassign {
				res.Reassigned += n
			} else {
				res.Replicas += n
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply: inventory write: %w", err)
	}
	if d.deps.Transfers != nil {
		if err := d.queueTransfers(ctx, tgt, plan, created, res); err != nil {
			return err
		}
	}
	if d.deps.Requests != nil && len(plan.RequestUpdates) > 0 {
		if err := d.deps.Requests.UpdateCopyRequests(ctx, plan.RequestUpdates); err != nil {
			return fmt.Errorf("apply: update copy requests: %w", err)
		}
		res.Requests = len(plan.RequestUpdates)
	}
	return nil
}

// applyCopy adds the updates of one copy and returns the number of block
// replicas created (or reassigned).
func (d *Dealer) applyCopy(t *inventory.Txn, cur *inventory.Snapshot, c *Copy, gid inventory.GroupID, at time.Time, created *[]inventory.BlockID) (int, error) {
	var dr *inventory.DatasetReplica
	for r := range cur.DatasetReplicas(c.Dataset) {
		if r.Site == c.Site {
			dr = &r
			break
		}
	}
	n := 0
	if c.Reassign {
		for _, b := range c.Blocks {
			r, ok := t.BlockReplica(b, c.Site)
			if !ok || r.PendingDeletion {
				continue
			}
			r.Group, r.LastUpdate = gid, at.Unix()
			if err := t.Add(inventory.UpsertBlockReplica{BlockReplica: r}); err != nil {
				return 0, err
			}
			n++
		}
		if n > 0 && dr != nil && dr.Group != gid {
			r := *dr
			r.Group = gid
			if err := t.Add(inventory.UpsertDatasetReplica{DatasetReplica: r}); err != nil {
				return 0, err
			}
		}
		return n, nil
	}
	var blocks []inventory.BlockID
	for _, b := range c.Blocks {
		if _, exists := t.BlockReplica(b, c.Site); !exists {
			blocks = append(blocks, b)
		}
	}
	if len(blocks) == 0 {
		return 0, nil
	}
	switch {
	case dr == nil:
		if err := t.Add(inventory.UpsertDatasetReplica{DatasetReplica: inventory.DatasetReplica{
			Dataset: c.Dataset, Site: c.Site, Growing: c.Growing, Group: gid}}); err != nil {
			return 0, err
		}
	case c.Growing && !dr.Growing:
		r := *dr
		r.Growing = true
		if err := t.Add(inventory.UpsertDatasetReplica{DatasetReplica: r}); err != nil {
			return 0, err
		}
	}
	for _, b := range blocks {
		// A projected replica: nothing there yet; the inventory counts the
		// block's size in the projected occupancy until it completes.
		if err := t.Add(inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{
			Block: b, Site: c.Site, Group: gid, LastUpdate: at.Unix()}}); err != nil {
			return 0, err
		}
	}
	*created = blocks
	return len(blocks), nil
}

// queueTransfers hands the file lists of the created block replicas to the
// file-operation daemon, in batches.
func (d *Dealer) queueTransfers(ctx context.Context, tgt Target, plan *Plan, created [][]inventory.BlockID, res *ApplyResult) error {
	cur := tgt.Snapshot
	const batch = 500
	var ts []BlockTransfer
	flush := func() error {
		if len(ts) == 0 {
			return nil
		}
		if err := d.deps.Transfers.QueueTransfers(ctx, ts); err != nil {
			return fmt.Errorf("apply: queue transfers: %w", err)
		}
		res.Transfers += len(ts)
		ts = ts[:0]
		return nil
	}
	for i, blocks := range created {
		c := &plan.Copies[i]
		for _, b := range blocks {
			files, err := tgt.Files(ctx, b)
			if err != nil {
				return fmt.Errorf("apply: files of %s: %w", cur.BlockFullName(b), err)
			}
			var sources []string
			for r := range cur.BlockReplicas(b) {
				if r.Complete && !r.PendingDeletion && r.Site != c.Site {
					if s, ok := cur.Site(r.Site); ok {
						sources = append(sources, s.Name)
					}
				}
			}
			slices.Sort(sources)
			ts = append(ts, BlockTransfer{Cycle: res.CycleID, Block: b, BlockName: cur.BlockFullName(b),
				Destination: c.SiteName, Sources: sources, Group: c.Group, Files: files})
			if len(ts) >= batch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// RequeueCycle queues again the transfers of a recorded cycle whose Apply
// failed after the inventory write (status failed): for every accepted copy
// it queues every still-incomplete replica of the dataset at the copy's
// site, and marks the cycle applied. TransferQueue's idempotency makes
// repeating it safe. It returns the number of transfers queued.
func (d *Dealer) RequeueCycle(ctx context.Context, tgt Target, cycleID int64) (int, error) {
	h := d.deps.History
	if h == nil || d.deps.Transfers == nil {
		return 0, fmt.Errorf("requeue cycle %d: %w", cycleID, ErrNoTransferQueue)
	}
	cy, err := h.Cycle(ctx, cycleID)
	if err != nil {
		return 0, err
	}
	if cy.Status != CycleFailed && cy.Status != CyclePlanned {
		return 0, fmt.Errorf("requeue cycle %d: status %s, only failed or interrupted cycles are requeued", cycleID, cy.Status)
	}
	var ts []BlockTransfer
	for off := 0; ; off += MaxHistoryPage {
		ps, err := h.Proposals(ctx, cycleID, ProposalFilter{Limit: MaxHistoryPage, Offset: off})
		if err != nil {
			return 0, err
		}
		for _, p := range ps {
			if !p.Accepted {
				continue
			}
			ds, ok := tgt.Snapshot.DatasetByName(itemDataset(p.Item))
			site, sok := tgt.Snapshot.SiteByName(p.Site)
			if !ok || !sok {
				continue
			}
			for b := range tgt.Snapshot.Blocks(ds.ID) {
				r, ok := tgt.Snapshot.BlockReplica(b.ID, site.ID)
				if !ok || r.Complete {
					continue
				}
				files, err := tgt.Files(ctx, b.ID)
				if err != nil {
					return 0, fmt.Errorf("requeue cycle %d: files of %s: %w", cycleID, tgt.Snapshot.BlockFullName(b.ID), err)
				}
				var sources []string
				for o := range tgt.Snapshot.BlockReplicas(b.ID) {
					if o.Complete && !o.PendingDeletion {
						if s, ok := tgt.Snapshot.Site(o.Site); ok {
							sources = append(sources, s.Name)
						}
					}
				}
				slices.Sort(sources)
				g, _ := tgt.Snapshot.Group(r.Group)
				ts = append(ts, BlockTransfer{Cycle: cycleID, Block: b.ID, BlockName: tgt.Snapshot.BlockFullName(b.ID),
					Destination: site.Name, Sources: sources, Group: g.Name, Files: files})
			}
		}
		if len(ps) < MaxHistoryPage {
			break
		}
	}
	for lo := 0; lo < len(ts); lo += 500 {
		if err := d.deps.Transfers.QueueTransfers(ctx, ts[lo:min(lo+500, len(ts))]); err != nil {
			return lo, fmt.Errorf("requeue cycle %d: queue transfers: %w", cycleID, err)
		}
	}
	return len(ts), h.Finish(ctx, cycleID, CycleApplied, time.Now(), nil)
}

// MaxHistoryPage is the page size RequeueCycle reads proposals with.
const MaxHistoryPage = 1000

// itemDataset returns the dataset part of an item name ("ds", "ds#block",
// "ds (N blocks)").
func itemDataset(item string) string {
	if i := strings.IndexByte(item, '#'); i >= 0 {
		return item[:i]
	}
	if i := strings.Index(item, " ("); i >= 0 {
		return item[:i]
	}
	return item
}
