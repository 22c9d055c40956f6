package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

// This file connects components that do not import each other: each
// declares the narrow interface it needs, and the adapters here implement
// those interfaces over the component that has the data.

// registryRequests gives the Dealer the registry's copy requests.
type registryRequests struct{ s *registry.Store }

var _ dealer.RequestSource = registryRequests{}

func (r registryRequests) OpenCopyRequests(ctx context.Context) ([]dealer.CopyRequest, error) {
	reqs, err := r.s.ListRequests(ctx, registry.RequestFilter{Kind: registry.KindCopy,
		Statuses: []registry.Status{registry.StatusNew, registry.StatusActivated}})
	if err != nil {
		return nil, err
	}
	out := make([]dealer.CopyRequest, len(reqs))
	for i, q := range reqs {
		out[i] = dealer.CopyRequest{ID: q.ID, User: q.User, Status: dealer.RequestStatus(q.Status),
			Items: q.Items, Sites: q.Sites, Group: q.Group, N: q.N}
	}
	return out, nil
}

// UpdateCopyRequests moves each request to its new status. It is
// idempotent as the Dealer requires: a request already in the target
// status is left alone (the registry answers ErrConflict for it).
func (r registryRequests) UpdateCopyRequests(ctx context.Context, us []dealer.RequestUpdate) error {
	now := time.Now()
	for _, u := range us {
		to := registry.Status(u.Status)
		t := registry.Transition{To: to, Reason: u.Reason, Actor: "dealer",
			From: []registry.Status{registry.StatusNew, registry.StatusActivated}}
		err := r.s.UpdateRequest(ctx, registry.KindCopy, u.ID, t, now)
		if errors.Is(err, registry.ErrConflict) {
			cur, gerr := r.s.GetRequest(ctx, registry.KindCopy, u.ID)
			if gerr == nil && cur.Status == to {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("copy request %d -> %s: %w", u.ID, to, err)
		}
	}
	return nil
}

// fileopQueue hands the Dealer's transfers and Detox's deletions to the
// file-operation daemon. Each call is one inventory write in which fileop
// records its subscriptions; fileop's queueing is idempotent per (file,
// site), as both callers require.
type fileopQueue struct{ store *inventory.Store }

var (
	_ dealer.TransferQueue = fileopQueue{}
	_ detox.DeletionQueue  = fileopQueue{}
)

func (q fileopQueue) QueueTransfers(ctx context.Context, ts []dealer.BlockTransfer) error {
	snap := q.store.Snapshot()
	refs := replicaRefs{}
	for _, t := range ts {
		site, ok := snap.SiteByName(t.Destination)
		if !ok {
			return fmt.Errorf("transfer of %s: unknown destination %s", t.BlockName, t.Destination)
		}
		refs.add(fileop.ReplicaRef{Block: t.Block, Site: site.ID})
	}
	return q.write(ctx, refs, fileop.QueueTransfers)
}

// QueueDeletions queues the removal of whole block replicas: Detox deletes
// replicas, never single files, so the files of each (block, site) named
// are exactly the files that replica holds.
func (q fileopQueue) QueueDeletions(ctx context.Context, dels []detox.FileDeletion) error {
	snap := q.store.Snapshot()
	refs := replicaRefs{}
	for _, d := range dels {
		site, ok := snap.SiteByName(d.Site)
		if !ok {
			return fmt.Errorf("deletion of %s: unknown site %s", d.LFN, d.Site)
		}
		b, ok := snap.BlockByName(d.Block)
		if !ok {
			continue // the block is gone already: nothing left to delete
		}
		refs.add(fileop.ReplicaRef{Block: b.ID, Site: site.ID, AllowLastCopy: d.LastCopy})
	}
	return q.write(ctx, refs, fileop.QueueDeletions)
}

// replicaRefs collects replica references once each, in the order named.
type replicaRefs struct {
	list []fileop.ReplicaRef
	seen map[fileop.ReplicaRef]bool
}

func (r *replicaRefs) add(ref fileop.ReplicaRef) {
	if r.seen == nil {
		r.seen = map[fileop.ReplicaRef]bool{}
	}
	if !r.seen[ref] {
		r.seen[ref] = true
		r.list = append(r.list, ref)
	}
}

// write queues refs with queue in one inventory write (none when empty).
func (q fileopQueue) write(ctx context.Context, refs replicaRefs,
	queue func(context.Context, *inventory.Store, *inventory.Txn, []fileop.ReplicaRef, int) (int, error)) error {
	if len(refs.list) == 0 {
		return nil
	}
	_, err := q.store.Write(ctx, time.Now(), func(t *inventory.Txn) error {
		_, err := queue(ctx, q.store, t, refs.list, 0)
		return err
	})
	return err
}

// registryLocks gives Detox the registry's detox locks, field for field:
// detox.Lock reads a registry lock's item (a dataset, a dataset glob or
// one block), sites and groups with the registry's meaning.
type registryLocks struct{ rs *registry.Store }

var _ detox.LockSource = registryLocks{}

func (l registryLocks) ActiveLocks(ctx context.Context, at time.Time) ([]detox.Lock, error) {
	locks, err := l.rs.ActiveLocks(ctx, at)
	if err != nil {
		return nil, err
	}
	out := make([]detox.Lock, 0, len(locks))
	for _, rl := range locks {
		dl := detox.Lock{ID: rl.ID, Dataset: rl.Item, Sites: rl.Sites, Groups: rl.Groups}
		if rl.Expires != 0 {
			dl.Expires = time.Unix(rl.Expires, 0)
		}
		if ds, block, err := inventory.SplitBlockName(rl.Item); err == nil {
			dl.Dataset, dl.Block = ds, block
		}
		out = append(out, dl)
	}
	return out, nil
}
