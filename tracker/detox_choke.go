package tracker

import (
	"context"
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/inventory"
)

// DetoxChokePoint is the tracker's ChokePoint: the one destructive choke
// point, detox.ApplyTo, so that deletion requests and the clean-up of cancelled
// copies go through the same re-checks (replica unchanged, not locked, not
// the last complete copy) as Detox's own deletions. The last-copy rule is
// never waived for requests.
type DetoxChokePoint struct {
	Store *inventory.Store
	Locks detox.LockSource
}

var _ ChokePoint = DetoxChokePoint{}

// reasonRequest marks the deletions a request asked for.
const reasonRequest detox.Reason = "deletion request"

func (c DetoxChokePoint) plan(snap *inventory.Snapshot, refs []fileop.ReplicaRef) *detox.Plan {
	p := &detox.Plan{}
	for _, r := range refs {
		rep, ok := snap.BlockReplica(r.Block, r.Site)
		if !ok {
			continue
		}
		b, _ := snap.Block(r.Block)
		p.Deletions = append(p.Deletions, detox.Deletion{Block: r.Block, Site: r.Site, Dataset: b.Dataset,
			Size: rep.Size, Files: rep.NumFiles, Reason: reasonRequest})
	}
	return p
}

func skipped(res *detox.ApplyResult) map[fileop.ReplicaRef]string {
	out := map[fileop.ReplicaRef]string{}
	for _, s := range res.Skipped {
		out[fileop.ReplicaRef{Block: s.Block, Site: s.Site}] = string(s.Why)
	}
	return out
}

// Refusals implements Guard with a dry run of the choke point.
func (c DetoxChokePoint) Refusals(ctx context.Context, snap *inventory.Snapshot, refs []fileop.ReplicaRef) (map[fileop.ReplicaRef]string, error) {
	res, err := detox.ApplyTo(ctx, detox.Target{Snapshot: snap, Files: c.Store}, c.plan(snap, refs),
		detox.ApplyOptions{DryRun: true, Locks: c.Locks, At: time.Now()})
	if err != nil {
		return nil, err
	}
	return skipped(res), nil
}

// Delete implements ChokePoint: the choke point marks the
// replicas pending deletion through the tracker's lease-fenced commit, and
// their files are queued in a second commit through the same fence. The
// queueing is done here for every replica the choke point let through,
// rather than per listed file, so that an incomplete replica holding no
// file yet (a cancelled copy) is removed at once and its pending transfers
// are cancelled.
func (c DetoxChokePoint) Delete(ctx context.Context, commit Commit, snap *inventory.Snapshot, refs []fileop.ReplicaRef, note string) (map[fileop.ReplicaRef]string, error) {
	res, err := detox.ApplyTo(ctx, detox.Target{Snapshot: snap, Files: c.Store, Commit: commit}, c.plan(snap, refs),
		detox.ApplyOptions{Locks: c.Locks, Queue: &detox.MemQueue{}, At: time.Now()})
	if err != nil {
		return nil, err
	}
	var through []fileop.ReplicaRef
	for _, d := range res.Deleted {
		through = append(through, fileop.ReplicaRef{Block: d.Block, Site: d.Site})
	}
	if len(through) > 0 {
		if _, err := commit(ctx, func(t *inventory.Txn) error {
			_, err := fileop.QueueDeletions(ctx, c.Store, t, through, 0)
			return err
		}); err != nil {
			return nil, fmt.Errorf("%s: replicas are pending deletion but queueing their files failed: %w", note, err)
		}
	}
	return skipped(res), nil
}
