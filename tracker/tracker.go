package tracker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

// Commit applies fn in one lease-fenced inventory transaction (the
// scheduler's Env.Commit).
type Commit func(ctx context.Context, fn func(*inventory.Txn) error) (inventory.WriteResult, error)

// ChokePoint is the one destructive choke point: it checks deletions
// (Guard) and carries them out.
type ChokePoint interface {
	Guard
	// Delete re-checks refs against snap (which must be current), marks
	// the surviving replicas pending deletion in one commit and queues
	// their files for removal. It returns the replicas it refused, with
	// the reason. Incomplete replicas are never a last copy.
	Delete(ctx context.Context, commit Commit, snap *inventory.Snapshot, refs []fileop.ReplicaRef, note string) (map[fileop.ReplicaRef]string, error)
}

// Requests is the registry's request store as the tracker uses it.
type Requests interface {
	ListRequests(ctx context.Context, f registry.RequestFilter) ([]registry.Request, error)
	UnfinishedCancelled(ctx context.Context, kind registry.Kind) ([]registry.Request, error)
	UpdateRequest(ctx context.Context, kind registry.Kind, id int64, t registry.Transition, at time.Time) error
	ApproveRequest(ctx context.Context, id int64, by string, at time.Time) (registry.Request, error)
}

// Tracker runs tracker passes. Its fields are set once.
type Tracker struct {
	Requests Requests
	// Queue is the file-operation queue's database.
	Queue *db.DB
	Choke ChokePoint
	// Groups returns the groups a user acts for (nil: none; every
	// deletion request then waits for an operator's approval).
	Groups func(user string) []string
	Log    *logrus.Entry
}

// Result counts what a pass did.
type Result struct {
	Changed   int // requests whose state, reason or actions changed
	Completed int
	Rejected  int
	Cancelled int
	Deleted   int // replicas queued for deletion
}

func (r Result) String() string {
	return fmt.Sprintf("%d requests changed (%d completed, %d rejected, %d cancelled), %d replicas queued for deletion",
		r.Changed, r.Completed, r.Rejected, r.Cancelled, r.Deleted)
}

// Gather reads a pass's input.
func (t *Tracker) Gather(ctx context.Context, snap *inventory.Snapshot) (Input, error) {
	in := Input{Snapshot: snap, Groups: t.Groups}
	open := []registry.Status{registry.StatusNew, registry.StatusActivated}
	var err error
	if in.Copies, err = t.Requests.ListRequests(ctx, registry.RequestFilter{Kind: registry.KindCopy, Statuses: open}); err != nil {
		return in, err
	}
	if in.Cancelled, err = t.Requests.UnfinishedCancelled(ctx, registry.KindCopy); err != nil {
		return in, err
	}
	if in.Deletions, err = t.Requests.ListRequests(ctx, registry.RequestFilter{Kind: registry.KindDeletion, Statuses: open}); err != nil {
		return in, err
	}
	// The replicas the requests concern, and since when cancellations
	// count (a transfer cancelled before the oldest request is not ours).
	var xfer, rm []fileop.ReplicaRef
	since := int64(-1)
	p := &planner{in: in, snap: snap}
	for _, group := range [][]registry.Request{in.Copies, in.Cancelled} {
		for _, r := range group {
			if since < 0 || r.FirstRequest < since {
				since = r.FirstRequest
			}
			for _, s := range p.sitesOf(r.Sites) {
				for _, item := range r.Items {
					for _, b := range p.blocksOf(item) {
						if rep, ok := snap.BlockReplica(b.ID, s.ID); ok && !rep.Complete {
							xfer = append(xfer, fileop.ReplicaRef{Block: b.ID, Site: s.ID})
						}
					}
				}
			}
		}
	}
	for _, r := range in.Deletions {
		if r.Status != registry.StatusActivated {
			continue
		}
		for _, s := range p.sitesOf(r.Sites) {
			for _, item := range r.Items {
				for _, b := range p.blocksOf(item) {
					if rep, ok := snap.BlockReplica(b.ID, s.ID); ok && rep.PendingDeletion {
						rm = append(rm, fileop.ReplicaRef{Block: b.ID, Site: s.ID})
					}
				}
			}
		}
	}
	if in.Transfers, err = fileop.ReplicaActivities(ctx, t.Queue, fileop.OpTransfer, xfer, max(since, 0)); err != nil {
		return in, err
	}
	if in.Removals, err = fileop.ReplicaActivities(ctx, t.Queue, fileop.OpDeletion, rm, 0); err != nil {
		return in, err
	}
	return in, nil
}

// Pass gathers, plans and applies one pass. current returns the current
// snapshot and commit is the lease-fenced writer: the tracker runs as a
// scheduler writer.
func (t *Tracker) Pass(ctx context.Context, current func() *inventory.Snapshot, commit Commit, at time.Time) (Result, error) {
	in, err := t.Gather(ctx, current())
	if err != nil {
		return Result{}, err
	}
	plan, err := Make(ctx, in, t.Choke)
	if err != nil {
		return Result{}, err
	}
	return t.Apply(ctx, plan, current, commit, at)
}

// Apply carries out a plan: approvals, then the inventory work of each
// change, re-checked by the choke point against the current snapshot,
// then its transition. A deletion the choke point refuses at this point
// (the state changed since planning) rejects its request with the reason.
// A request changed meanwhile by someone else (cancelled by its owner) is
// left for the next pass.
func (t *Tracker) Apply(ctx context.Context, plan *Plan, current func() *inventory.Snapshot, commit Commit, at time.Time) (Result, error) {
	var res Result
	for _, c := range plan.Changes {
		if c.Approve != "" {
			if _, err := t.Requests.ApproveRequest(ctx, c.ID, c.Approve, at); err != nil {
				if errors.Is(err, registry.ErrConflict) {
					continue
				}
				return res, err
			}
		}
		tr := c.Transition
		if len(c.Delete) > 0 {
			note := fmt.Sprintf("%s request %d", c.Kind, c.ID)
			snap := current()
			refused, err := t.Choke.Delete(ctx, commit, snap, c.Delete, note)
			if err != nil {
				return res, fmt.Errorf("%s: %w", note, err)
			}
			if len(refused) > 0 && !c.Cleanup {
				var why []string
				for _, ref := range c.Delete {
					if r, ok := refused[ref]; ok {
						s, _ := snap.Site(ref.Site)
						why = append(why, fmt.Sprintf("%s at %s: %s", snap.BlockFullName(ref.Block), s.Name, r))
					}
				}
				tr.To, tr.Reason = registry.StatusRejected, "refused by the deletion guard: "+listed(why)
				for i := range tr.Actions {
					tr.Actions[i].Status, tr.Actions[i].Reason = registry.ActionRejected, "request rejected"
				}
			}
			res.Deleted += len(c.Delete) - len(refused)
		}
		if err := t.finish(ctx, c, tr, at, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// finish records a change's transition.
func (t *Tracker) finish(ctx context.Context, c Change, tr registry.Transition, at time.Time, res *Result) error {
	for i := range tr.Actions {
		tr.Actions[i].Updated = 0
	}
	err := t.Requests.UpdateRequest(ctx, c.Kind, c.ID, tr, at)
	if errors.Is(err, registry.ErrConflict) {
		if t.Log != nil {
			t.Log.WithField("request", c.ID).WithError(err).Info("request changed meanwhile; left for the next pass")
		}
		return nil
	}
	if err != nil {
		return err
	}
	res.Changed++
	from := c.Transition.From[0]
	switch {
	case tr.To == from:
	case tr.To == registry.StatusCompleted:
		res.Completed++
	case tr.To == registry.StatusRejected:
		res.Rejected++
	case tr.To == registry.StatusCancelled:
		res.Cancelled++
	}
	if t.Log != nil && tr.To != from {
		t.Log.WithFields(logrus.Fields{"request": c.ID, "kind": c.Kind, "status": tr.To, "reason": strings.TrimSpace(tr.Reason)}).Info("request moved")
	}
	return nil
}
