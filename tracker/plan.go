// Package tracker carries copy and deletion requests to their end, as
// Dynamo's request tracker did and Rucio's rule engine does: it follows
// every item of a request at every site to a state with files and bytes
// done, executes deletion requests through the one destructive choke
// point, and moves requests to completed, rejected (with the reason) or
// cancelled, cleaning up what a cancelled copy leaves behind.
//
// Plan is pure: it reads a snapshot, the requests and the file-operation
// queue's activity, and asks a Guard which deletions the choke point
// refuses; it returns what to change, with reasons. Apply executes a plan.
package tracker

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

// Guard is the destructive choke point as the tracker sees it.
type Guard interface {
	// Refusals returns, for each replica of refs the choke point would not
	// delete now, the reason (locked, last complete copy...). refs are
	// checked together: deleting all of them is what is asked.
	Refusals(ctx context.Context, snap *inventory.Snapshot, refs []fileop.ReplicaRef) (map[fileop.ReplicaRef]string, error)
}

// Input is what one tracker pass reads.
type Input struct {
	Snapshot *inventory.Snapshot
	// Copies are the open copy requests; Cancelled the cancelled copy
	// requests with actions still in progress; Deletions the open deletion
	// requests.
	Copies, Cancelled, Deletions []registry.Request
	// Transfers and Removals are the file-operation queue's work per block
	// replica (transfers to, deletions at), cancelled rows included since
	// the oldest request's creation.
	Transfers, Removals map[fileop.ReplicaRef]fileop.ReplicaActivity
	// Groups returns the groups a user acts for (deletion approval scope).
	Groups func(user string) []string
}

// Change is what to do for one request.
type Change struct {
	Kind registry.Kind
	ID   int64
	// Transition is applied after the inventory work below succeeded.
	Transition registry.Transition
	// Approve records the policy's approval of a deletion request first.
	Approve string
	// Delete are the replicas to mark pending deletion and queue through
	// the choke point: a deletion request's targets, or the incomplete
	// replicas a cancelled copy leaves behind.
	Delete []fileop.ReplicaRef
	// Cleanup is true when Delete only removes incomplete leftovers.
	Cleanup bool
}

// Plan is the outcome of one pass.
type Plan struct {
	Changes []Change
}

// Actor is recorded in the history of the transitions the tracker makes.
const Actor = "tracker"

// maxListed bounds how many offending replicas a reason names.
const maxListed = 5

// Make plans one pass.
func Make(ctx context.Context, in Input, guard Guard) (*Plan, error) {
	p := &planner{in: in, snap: in.Snapshot, wanted: map[itemSite][]int64{}}
	for _, r := range in.Copies {
		for _, it := range r.Items {
			for _, s := range r.Sites {
				k := itemSite{it, s}
				p.wanted[k] = append(p.wanted[k], r.ID)
			}
		}
	}
	out := &Plan{}
	for _, r := range in.Copies {
		if c, ok := p.copyRequest(r); ok {
			out.Changes = append(out.Changes, c)
		}
	}
	for _, r := range in.Cancelled {
		if c, ok := p.cleanup(r, r.Status, r.Reason); ok {
			out.Changes = append(out.Changes, c)
		}
	}
	var accepted []fileop.ReplicaRef
	for _, r := range in.Deletions {
		c, ok, err := p.deletionRequest(ctx, r, guard, accepted)
		if err != nil {
			return nil, err
		}
		if ok {
			accepted = append(accepted, c.Delete...)
			out.Changes = append(out.Changes, c)
		}
	}
	return out, nil
}

type itemSite struct{ item, site string }

type planner struct {
	in     Input
	snap   *inventory.Snapshot
	wanted map[itemSite][]int64 // open copy requests by (item, site)
}

// blocksOf resolves a request item to its blocks (nil if it is gone).
func (p *planner) blocksOf(item string) []inventory.Block {
	if strings.Contains(item, "#") {
		if b, ok := p.snap.BlockByName(item); ok {
			return []inventory.Block{b}
		}
		return nil
	}
	ds, ok := p.snap.DatasetByName(item)
	if !ok {
		return nil
	}
	var out []inventory.Block
	for b := range p.snap.Blocks(ds.ID) {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b inventory.Block) int { return int(a.ID) - int(b.ID) })
	return out
}

// sitesOf resolves request sites (names, or globs from older clients).
func (p *planner) sitesOf(names []string) []inventory.Site {
	var out []inventory.Site
	for _, n := range names {
		if !strings.ContainsAny(n, "*?[") {
			if s, ok := p.snap.SiteByName(n); ok {
				out = append(out, s)
			}
			continue
		}
		pat, err := glob.Compile(n)
		if err != nil {
			continue
		}
		for _, s := range p.snap.Sites() {
			if pat.Match(s.Name) {
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, func(a, b inventory.Site) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(out, func(a, b inventory.Site) bool { return a.ID == b.ID })
}

// holds reports whether any block of blocks has a replica at site.
func (p *planner) holds(blocks []inventory.Block, site inventory.SiteID) bool {
	for _, b := range blocks {
		if _, ok := p.snap.BlockReplica(b.ID, site); ok {
			return true
		}
	}
	return false
}

func totals(blocks []inventory.Block) (files, bytes int64) {
	for _, b := range blocks {
		files += int64(b.NumFiles)
		bytes += b.Size
	}
	return
}

// copyAction computes the state of one item at one site of a copy request.
func (p *planner) copyAction(r registry.Request, item string, blocks []inventory.Block, site inventory.Site) registry.Action {
	a := registry.Action{Item: item, Site: site.Name}
	a.FilesTotal, a.BytesTotal = totals(blocks)
	var missing, pending, incomplete int
	var act fileop.ReplicaActivity
	for _, b := range blocks {
		rep, ok := p.snap.BlockReplica(b.ID, site.ID)
		switch {
		case !ok:
			missing++
			continue
		case rep.PendingDeletion:
			pending++
			continue
		case rep.Complete:
			a.FilesDone += int64(b.NumFiles)
			a.BytesDone += b.Size
			continue
		}
		incomplete++
		a.FilesDone += int64(rep.NumFiles)
		a.BytesDone += rep.Size
		x := p.in.Transfers[fileop.ReplicaRef{Block: b.ID, Site: site.ID}]
		act.Queued += x.Queued
		act.Active += x.Active
		act.Held += x.Held
		act.Cancelled += x.Cancelled
		if len(act.Notes) < 3 {
			act.Notes = append(act.Notes, x.Notes...)
		}
		if x.CancelNote != "" {
			act.CancelNote = x.CancelNote
		}
	}
	switch {
	case act.Held > 0:
		a.Status = registry.ActionStuck
		a.Reason = fmt.Sprintf("%d files held", act.Held) + example(act.Notes)
	case act.Active > 0:
		a.Status = registry.ActionTransferring
	case act.Queued > 0:
		a.Status = registry.ActionQueued
		if len(act.Notes) > 0 {
			a.Reason = "retrying" + example(act.Notes)
		}
	case act.Cancelled > 0:
		a.Status = registry.ActionCancelled
		a.Reason = fmt.Sprintf("%d transfers cancelled (%s)", act.Cancelled, act.CancelNote)
	case pending > 0:
		a.Status = registry.ActionNew
		a.Reason = "waiting for the replica pending deletion there to be removed"
	case missing > 0:
		a.Status = registry.ActionNew
		a.Reason = dealerReason(r, "waiting for the Dealer to place the copy")
	case incomplete > 0:
		a.Status = registry.ActionStuck
		a.Reason = fmt.Sprintf("%d files missing and no transfer queued for them", a.FilesTotal-a.FilesDone)
	default:
		a.Status = registry.ActionCompleted
	}
	return a
}

// dealerReason is the Dealer's latest refusal recorded on the request, or def.
func dealerReason(r registry.Request, def string) string {
	if strings.HasPrefix(r.Reason, "not placed") {
		return r.Reason
	}
	return def
}

// copyRequest follows an open copy request.
func (p *planner) copyRequest(r registry.Request) (Change, bool) {
	sites := p.sitesOf(r.Sites)
	var acts []registry.Action
	for _, item := range r.Items {
		blocks := p.blocksOf(item)
		if len(blocks) == 0 {
			continue // the Dealer rejects requests for unknown items
		}
		var targets []inventory.Site
		if r.N == 0 {
			targets = sites
		} else {
			for _, s := range sites {
				if p.holds(blocks, s.ID) {
					targets = append(targets, s)
				}
			}
		}
		for _, s := range targets {
			acts = append(acts, p.copyAction(r, item, blocks, s))
		}
		if r.N > 0 && len(targets) < r.N {
			a := registry.Action{Item: item, Site: "*", Status: registry.ActionNew,
				Reason: dealerReason(r, fmt.Sprintf("waiting for the Dealer to place %d more copies", r.N-len(targets)))}
			a.FilesTotal, a.BytesTotal = totals(blocks)
			acts = append(acts, a)
		}
	}
	t := registry.Transition{From: []registry.Status{r.Status}, To: r.Status, Reason: r.Reason, Actor: Actor, Actions: acts}
	t.Drop = dropped(r.Actions, acts)
	if len(acts) == 0 {
		return Change{}, false
	}
	done, cancelled, live := 0, []string{}, 0
	var stuck []string
	for _, a := range acts {
		switch a.Status {
		case registry.ActionCompleted:
			done++
		case registry.ActionCancelled:
			cancelled = append(cancelled, a.Item+" to "+a.Site+": "+a.Reason)
		case registry.ActionStuck:
			stuck = append(stuck, a.Item+" to "+a.Site+": "+a.Reason)
			live++
		case registry.ActionQueued, registry.ActionTransferring:
			live++
		}
	}
	switch {
	case done == len(acts):
		t.To, t.Reason = registry.StatusCompleted, ""
	case len(cancelled) > 0 && live == 0:
		// Transfers cancelled behind the request's back (fileop cancel):
		// the request cannot finish, so it ends cancelled and its
		// incomplete replicas go instead of dangling.
		t.To = registry.StatusCancelled
		t.Reason = "transfers cancelled: " + listed(cancelled)
		return p.cleanupWith(r, t)
	case len(stuck) > 0:
		t.Reason = "stuck: " + listed(stuck)
	case strings.HasPrefix(r.Reason, "stuck: "):
		t.Reason = "" // no longer stuck
	}
	if t.To == registry.StatusNew && live+done > 0 {
		t.To = registry.StatusActivated
	}
	if !changed(r, t) {
		return Change{}, false
	}
	return Change{Kind: registry.KindCopy, ID: r.ID, Transition: t}, true
}

// cleanup finishes a cancelled copy request: its unfinished actions end
// cancelled and the incomplete replicas they leave are removed.
func (p *planner) cleanup(r registry.Request, st registry.Status, reason string) (Change, bool) {
	t := registry.Transition{From: []registry.Status{registry.StatusCancelled}, To: st, Reason: reason, Actor: Actor}
	return p.cleanupWith(r, t)
}

func (p *planner) cleanupWith(r registry.Request, t registry.Transition) (Change, bool) {
	c := Change{Kind: registry.KindCopy, ID: r.ID, Cleanup: true}
	acts := t.Actions
	if acts == nil {
		acts = r.Actions
	}
	var out []registry.Action
	for _, a := range acts {
		if registry.ActionDone(a.Status) && a.Status != registry.ActionCancelled {
			out = append(out, a)
			continue
		}
		a.Status = registry.ActionCancelled
		if a.Reason == "" {
			a.Reason = "request cancelled"
		}
		out = append(out, a)
		if a.Site == "*" || slices.ContainsFunc(p.wanted[itemSite{a.Item, a.Site}], func(id int64) bool { return id != r.ID }) {
			continue // another open request still wants this copy
		}
		site, ok := p.snap.SiteByName(a.Site)
		if !ok {
			continue
		}
		for _, b := range p.blocksOf(a.Item) {
			if rep, ok := p.snap.BlockReplica(b.ID, site.ID); ok && !rep.Complete && !rep.PendingDeletion {
				c.Delete = append(c.Delete, fileop.ReplicaRef{Block: b.ID, Site: site.ID})
			}
		}
	}
	t.Actions = out
	c.Transition = t
	return c, true
}

// deletionRequest follows an open deletion request.
func (p *planner) deletionRequest(ctx context.Context, r registry.Request, guard Guard, accepted []fileop.ReplicaRef) (Change, bool, error) {
	if r.Status == registry.StatusActivated {
		c, ok := p.deletionProgress(r)
		return c, ok, nil
	}
	t := registry.Transition{From: []registry.Status{registry.StatusNew}, To: registry.StatusNew, Actor: Actor}
	c := Change{Kind: registry.KindDeletion, ID: r.ID}
	type target struct {
		item   string
		site   inventory.Site
		refs   []fileop.ReplicaRef
		groups []string // owners outside the requester's scope
	}
	var targets []target
	var all []fileop.ReplicaRef
	scope := map[string]bool{}
	if p.in.Groups != nil {
		for _, g := range p.in.Groups(r.User) {
			scope[g] = true
		}
	}
	var outside []string
	for _, item := range r.Items {
		blocks := p.blocksOf(item)
		for _, s := range p.sitesOf(r.Sites) {
			tg := target{item: item, site: s}
			for _, b := range blocks {
				rep, ok := p.snap.BlockReplica(b.ID, s.ID)
				if !ok || rep.PendingDeletion {
					continue
				}
				tg.refs = append(tg.refs, fileop.ReplicaRef{Block: b.ID, Site: s.ID})
				g, _ := p.snap.Group(rep.Group)
				if !scope[g.Name] && !slices.Contains(tg.groups, g.Name) {
					tg.groups = append(tg.groups, g.Name)
				}
			}
			if len(tg.refs) == 0 {
				continue
			}
			if len(tg.groups) > 0 {
				outside = append(outside, fmt.Sprintf("%s at %s is owned by %s", item, s.Name, strings.Join(tg.groups, ", ")))
			}
			targets = append(targets, tg)
			all = append(all, tg.refs...)
		}
	}
	if len(targets) == 0 {
		t.To, t.Reason = registry.StatusCompleted, "nothing to delete: no replica of the items at the sites"
		c.Transition = t
		return c, true, nil
	}
	var acts []registry.Action
	for _, tg := range targets {
		a := registry.Action{Item: tg.item, Site: tg.site.Name, Status: registry.ActionNew}
		for _, ref := range tg.refs {
			rep, _ := p.snap.BlockReplica(ref.Block, ref.Site)
			a.FilesTotal += int64(rep.NumFiles)
			a.BytesTotal += rep.Size
		}
		acts = append(acts, a)
	}
	approved := r.ApprovedBy
	if approved == "" && len(outside) == 0 && len(scope) > 0 {
		approved, c.Approve = "policy", "policy"
	}
	if approved == "" {
		why := "awaiting an operator's approval (POST /api/v1/deletion-requests/" + fmt.Sprint(r.ID) + "/approve)"
		if len(outside) > 0 {
			why += ": " + listed(outside) + ", outside the groups of " + r.User
		}
		t.Reason = why
		for i := range acts {
			acts[i].Reason = "awaiting approval"
		}
		t.Actions = acts
		c.Transition = t
		return c, changed(r, t), nil
	}
	refused, err := guard.Refusals(ctx, p.snap, append(slices.Clone(accepted), all...))
	if err != nil {
		return Change{}, false, err
	}
	var why []string
	for _, tg := range targets {
		for _, ref := range tg.refs {
			if reason, ok := refused[ref]; ok {
				why = append(why, fmt.Sprintf("%s at %s: %s", p.snap.BlockFullName(ref.Block), tg.site.Name, reason))
			}
		}
	}
	if len(why) > 0 {
		t.To, t.Reason = registry.StatusRejected, "refused by the deletion guard: "+listed(why)
		for i := range acts {
			acts[i].Status, acts[i].Reason = registry.ActionRejected, "request rejected"
		}
		t.Actions = acts
		c.Transition = t
		c.Approve = ""
		return c, true, nil
	}
	for i := range acts {
		acts[i].Status = registry.ActionQueued
	}
	t.To, t.Reason, t.Actions = registry.StatusActivated, "", acts
	c.Transition, c.Delete = t, all
	return c, true, nil
}

// deletionProgress follows an activated deletion request: the replicas
// pending deletion that remain at each of its sites.
func (p *planner) deletionProgress(r registry.Request) (Change, bool) {
	t := registry.Transition{From: []registry.Status{registry.StatusActivated}, To: registry.StatusActivated, Actor: Actor}
	done := 0
	var stuck []string
	for _, a := range r.Actions {
		if registry.ActionDone(a.Status) {
			t.Actions = append(t.Actions, a)
			done++
			continue
		}
		site, _ := p.snap.SiteByName(a.Site)
		var files, bytes int64
		var act fileop.ReplicaActivity
		for _, b := range p.blocksOf(a.Item) {
			rep, ok := p.snap.BlockReplica(b.ID, site.ID)
			if !ok || !rep.PendingDeletion {
				continue
			}
			files += int64(rep.NumFiles)
			bytes += rep.Size
			x := p.in.Removals[fileop.ReplicaRef{Block: b.ID, Site: site.ID}]
			act.Queued += x.Queued
			act.Active += x.Active
			act.Held += x.Held
			act.Notes = append(act.Notes, x.Notes...)
		}
		a.FilesDone, a.BytesDone = max(a.FilesTotal-files, 0), max(a.BytesTotal-bytes, 0)
		a.Reason = ""
		switch {
		case files == 0 && bytes == 0 && act.Queued+act.Active+act.Held == 0:
			a.Status, a.FilesDone, a.BytesDone = registry.ActionCompleted, a.FilesTotal, a.BytesTotal
			done++
		case act.Held > 0:
			a.Status = registry.ActionStuck
			a.Reason = fmt.Sprintf("%d file deletions held", act.Held) + example(act.Notes)
			stuck = append(stuck, a.Item+" at "+a.Site+": "+a.Reason)
		case act.Active > 0:
			a.Status = registry.ActionDeleting
		default:
			a.Status = registry.ActionQueued
		}
		t.Actions = append(t.Actions, a)
	}
	switch {
	case done == len(t.Actions):
		t.To = registry.StatusCompleted
	case len(stuck) > 0:
		t.Reason = "stuck: " + listed(stuck)
	}
	if !changed(r, t) {
		return Change{}, false
	}
	return Change{Kind: registry.KindDeletion, ID: r.ID, Transition: t}, true
}

// example quotes the first note, which is typical of the others.
func example(notes []string) string {
	if len(notes) == 0 {
		return ""
	}
	return "; first: " + notes[0]
}

// listed joins the first few entries and says how many more there are.
func listed(xs []string) string {
	if len(xs) <= maxListed {
		return strings.Join(xs, "; ")
	}
	return strings.Join(xs[:maxListed], "; ") + fmt.Sprintf("; and %d more", len(xs)-maxListed)
}

// dropped returns the stored actions a pass no longer produces (the "*"
// placeholder of a copy the Dealer has placed since).
func dropped(old, cur []registry.Action) []registry.Action {
	var out []registry.Action
	for _, o := range old {
		if !slices.ContainsFunc(cur, func(a registry.Action) bool { return a.Item == o.Item && a.Site == o.Site }) {
			out = append(out, o)
		}
	}
	return out
}

// changed reports whether t changes anything of r, so that a quiet pass
// writes nothing.
func changed(r registry.Request, t registry.Transition) bool {
	if t.To != r.Status || t.Reason != r.Reason || len(t.Drop) > 0 || len(t.Actions) != len(r.Actions) {
		return true
	}
	for _, a := range t.Actions {
		i := slices.IndexFunc(r.Actions, func(o registry.Action) bool { return o.Item == a.Item && o.Site == a.Site })
		if i < 0 {
			return true
		}
		o := r.Actions[i]
		if o.Status != a.Status || o.Reason != a.Reason || o.FilesDone != a.FilesDone || o.FilesTotal != a.FilesTotal ||
			o.BytesDone != a.BytesDone || o.BytesTotal != a.BytesTotal {
			return true
		}
	}
	return false
}
