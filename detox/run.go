package detox

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// PlanOptions parameterize one cycle.
type PlanOptions struct {
	// At is the cycle's clock: time expressions ("1 week ago"), lock expiry
	// and usage ranks are computed against it. Zero: time.Now().
	At time.Time
	// Sources are the attribute producers beyond the inventory.
	Sources Sources
	// DeletionPerIteration is the largest quota fraction one iteration
	// deletes at the chosen site (0: DefaultDeletionPerIteration).
	DeletionPerIteration float64
	// AllowLastCopyDeletion lets Delete lines remove the last copy of a
	// block (inventory.DeletionGuard); each such deletion is marked
	// LastCopy. Dismiss never can. It is the partition's explicit opt-in
	// (PartitionConfig.AllowLastCopyDeletion).
	AllowLastCopyDeletion bool
	// CopyCounts is the scope of the copy-counting and fullness variables
	// (empty: CopyScopePartition).
	CopyCounts CopyScope
	// Workers caps the goroutines the cycle plans with (0: GOMAXPROCS).
	// It never changes the plan (Config.PlanWorkers).
	Workers int
	// Log receives progress; nil discards.
	Log *logrus.Entry
}

// PlanCycle runs one Detox cycle on a snapshot and returns the plan: it
// gathers the producers' answers (Sources.Gather) and plans with them
// (PlanWith). It writes nothing. The policy is checked against the
// available producers first (ErrNoProducer).
func PlanCycle(ctx context.Context, snap *inventory.Snapshot, pol *policy.Policy, opts PlanOptions) (*Plan, error) {
	if opts.At.IsZero() {
		opts.At = time.Now()
	}
	if !opts.CopyCounts.valid() {
		return nil, fmt.Errorf("copy counts scope %q: must be %q or %q", opts.CopyCounts, CopyScopePartition, CopyScopeInventory)
	}
	in, err := opts.Sources.Gather(ctx, snap, pol, opts.At)
	if err != nil {
		return nil, err
	}
	return PlanWith(ctx, snap, pol, in, opts)
}

// PlanWith plans one cycle from a snapshot and gathered inputs. It is pure:
// it reads only snap, pol, in and opts (never opts.Sources: in stands for
// them), so the same arguments give the same plan, and it talks to no
// database or service; ctx only cancels it.
//
// The cycle follows Dynamo (docs/detox.md): target sites are those an On line
// matches; each dataset replica of the partition there is evaluated top-down
// (block lines strip the blocks they match, the first dataset-level match
// decides, no match takes the default). Delete decisions are deleted at
// once; Dismiss decisions at sites a When line triggered are deleted
// iteratively, site with the highest protected fraction first, in Order, at
// most DeletionPerIteration of the quota per iteration, with Until checked
// after every replica; after each iteration only the replicas of the
// datasets whose copies changed are re-evaluated. Algo Static sorts all
// candidates once and does not re-evaluate. Locked block replicas are never
// deleted, and every deletion passes inventory.DeletionGuard in deletion
// order: the last copy of a block (no other complete copy at a ready or
// waitroom site, of any storage type) is kept with ReasonLastCopy unless
// AllowLastCopyDeletion and a Delete line (then ReasonLastCopyDeleted).
// Within a dataset replica block replicas are taken in block id order, so
// the plan does not depend on where the inventory keeps them in memory.
func PlanWith(ctx context.Context, snap *inventory.Snapshot, pol *policy.Policy, in Inputs, opts PlanOptions) (*Plan, error) {
	start := time.Now()
	if err := checkProducers(pol, in.available); err != nil {
		return nil, err
	}
	if !opts.CopyCounts.valid() {
		return nil, fmt.Errorf("copy counts scope %q: must be %q or %q", opts.CopyCounts, CopyScopePartition, CopyScopeInventory)
	}
	if opts.At.IsZero() {
		opts.At = time.Now()
	}
	if opts.DeletionPerIteration <= 0 {
		opts.DeletionPerIteration = DefaultDeletionPerIteration
	}
	opts.Sources = Sources{} // in stands for them: planning must not reach a producer
	c := &cycle{pol: pol, snap: snap, at: opts.At, now: opts.At.Unix(), opts: opts, in: in}
	dsMemo, siteMemo := policy.NewGroupCache(), policy.NewGroupCache()
	cp, err := policy.CompilePolicy(pol, c.groupedReplicaBindings(dsMemo, siteMemo), siteBindings(), opts.At)
	if err != nil {
		return nil, err
	}
	dsMemo.Reset(int(snap.DatasetSlots()))
	c.cp = cp
	if err := c.build(ctx); err != nil {
		return nil, err
	}
	siteMemo.Reset(len(c.sites))
	built := time.Now()
	iters, err := c.run(ctx)
	if err != nil {
		return nil, err
	}
	p := c.plan()
	p.Iterations = iters
	p.Elapsed = time.Since(start)
	if opts.Log != nil {
		opts.Log.WithField("partition", pol.Partition).WithField("replicas", len(c.drs)).
			WithField("block_replicas", len(c.brs)).WithField("build", built.Sub(start).String()).
			WithField("iterations", iters).WithField("deletions", len(p.Deletions)).
			WithField("elapsed", p.Elapsed.String()).Info("detox cycle planned")
	}
	return p, nil
}

// evaluate walks the policy for one dataset replica and records each block
// replica's action and rule. It touches only that drec's brecs, so drecs
// can be evaluated in parallel.
func (c *cycle) evaluate(di int32, v *view) {
	d := &c.drs[di]
	v.c, v.d, v.one = c, di, -1
	brs := c.brs[d.first : d.first+d.n]
	active := 0
	for i := range brs {
		if brs[i].flags&brGone == 0 {
			brs[i].flags &^= brStripped
			active++
		}
	}
	from := 0
	for active > 0 {
		ri := c.cp.FirstMatch(v, from)
		if ri < 0 {
			c.decideRest(brs, c.pol.Default, -1)
			break
		}
		rule := c.cp.Rules[ri]
		if !rule.Rule.Action.BlockLevel() {
			c.decideRest(brs, rule.Rule.Action, int16(ri))
			break
		}
		// A block line: find the block replicas it matches on their own.
		matched := 0
		for i := range brs {
			r := &brs[i]
			if r.flags&(brGone|brStripped) != 0 {
				continue
			}
			v.one = d.first + int32(i)
			if rule.Match(v) {
				r.action, r.rule = rule.Rule.Action.DatasetLevel(), int16(ri)
				r.flags |= brStripped
				matched++
			}
		}
		v.one = -1
		active -= matched
		from = ri + 1
	}
	for i := range brs {
		brs[i].flags &^= brStripped
	}
}

func (c *cycle) decideRest(brs []brec, a policy.Action, ri int16) {
	for i := range brs {
		r := &brs[i]
		if r.flags&(brGone|brStripped) == 0 {
			r.action, r.rule = a.DatasetLevel(), ri
		}
	}
}

// guard returns the safety rule that forbids deleting r, or guardNone. It
// is the cheap pre-check the accounting uses (the cycle's copy counts);
// deleteBR asks the inventory's DeletionGuard, which has the last word.
func (c *cycle) guard(r *brec, st *siteState, a policy.Action) guardCode {
	if r.flags&brLocked != 0 {
		return guardLocked
	}
	others := int(c.blkCopies[r.block])
	if c.countsAsCopy(r, st) {
		others--
	}
	if others < 1 && !c.lastCopyAllowed(a) {
		return guardLastCopy
	}
	return guardNone
}

// countsAsCopy reports whether r is one of the block's copies in
// blkCopies (replicas in the partition are never pending deletion).
func (c *cycle) countsAsCopy(r *brec, st *siteState) bool {
	return r.flags&brComplete != 0 && inventory.UsableSite(st.site)
}

// lastCopyAllowed: the partition opted in and a Delete line decided.
// Dismiss never deletes a last copy.
func (c *cycle) lastCopyAllowed(a policy.Action) bool {
	return a == policy.ActionDelete && c.opts.AllowLastCopyDeletion
}

// account folds a drec's decisions into its site's protected and
// dismissed totals (sign -1 removes a previous accounting).
func (c *cycle) account(di int32, sign int64) {
	d := &c.drs[di]
	st := &c.sites[d.site]
	if sign < 0 {
		st.protected -= d.prot
		st.dismissed -= d.dism
		d.prot, d.dism = 0, 0
		return
	}
	var prot, dism, del int64
	for i := d.first; i < d.first+d.n; i++ {
		r := &c.brs[i]
		if r.flags&brGone != 0 {
			continue
		}
		r.guard = guardNone
		switch r.action {
		case policy.ActionProtect:
			prot += r.size
		case policy.ActionDelete, policy.ActionDismiss:
			if g := c.guard(r, st, r.action); g != guardNone {
				r.guard = g
				prot += r.size
			} else if r.action == policy.ActionDelete {
				del += r.size
			} else {
				dism += r.size
			}
		}
	}
	d.prot, d.dism = prot, dism
	c.order.changed(c, di)
	st.protected += prot
	st.dismissed += dism
	if del > 0 && !d.queuedDel {
		d.queuedDel = true
		c.delQueue = append(c.delQueue, di)
	}
}

// parallelMin is the number of dirty dataset replicas from which they are
// evaluated on all cores (a variable so tests can force the parallel path).
var parallelMin = 4096

// reevaluate evaluates every dirty drec (in parallel when there are many)
// and re-accounts them.
func (c *cycle) reevaluate(ctx context.Context) error {
	dirty := c.dirty
	if dirty == nil { // the first evaluation: everything
		dirty = make([]int32, len(c.drs))
		for i := range dirty {
			dirty[i] = int32(i)
		}
	}
	c.dirty = []int32{}
	slices.Sort(dirty) // evaluation order decides the order of Delete-line deletions
	for _, di := range dirty {
		c.drs[di].dirty = false
	}
	for _, di := range dirty {
		c.account(di, -1)
	}
	workers := c.opts.workers()
	if len(dirty) < parallelMin || workers < 2 {
		var v view
		for _, di := range dirty {
			c.evaluate(di, &v)
		}
	} else {
		// Workers take small batches as they go: dataset replicas differ
		// widely in cost (block count, which lines they reach), and a
		// worker that lost its core on a busy machine would otherwise
		// hold up a fixed share.
		const batch = 256
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var v view
				for {
					lo := int(next.Add(batch)) - batch
					if lo >= len(dirty) {
						return
					}
					for _, di := range dirty[lo:min(lo+batch, len(dirty))] {
						c.evaluate(di, &v)
					}
				}
			}()
		}
		wg.Wait()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, di := range dirty {
		c.account(di, +1)
	}
	return nil
}

// deleteBR is the planning choke point: it re-checks the safety rules
// against the cycle's current copy counts (earlier deletions in the same
// cycle count) and records the deletion. It reports whether it deleted.
//
// A block line's deletion of a block replica owned by a block-level group
// inside a dataset replica owned by a dataset-level group re-owns it to
// that group instead (Dynamo's hand-over): nothing is deleted.
func (c *cycle) deleteBR(i int32, d *drec, st *siteState) bool {
	r := &c.brs[i]
	if g := c.guard(r, st, r.action); g != guardNone {
		r.guard = g
		return false
	}
	if c.reowns(r, d) {
		r.flags |= brReowned
		return false
	}
	v := c.copies.Admit(r.block, st.site.ID, c.lastCopyAllowed(r.action))
	if !v.Allowed {
		r.guard = guardLastCopy
		return false
	}
	if v.LastCopy {
		r.flags |= brLastCopy
	}
	if c.countsAsCopy(r, st) {
		dec8(&c.blkCopies[r.block])
	}
	r.flags |= brDeleted
	c.delSeq++
	r.seq = c.delSeq
	st.used -= r.size
	st.deleted += r.size
	st.delFiles += int64(r.files)
	st.delReps++
	if r.flags&brComplete != 0 && st.site.StorageType == inventory.StorageDisk {
		dec8(&c.blkDisk[r.block])
		if st.site.Status == inventory.SiteReady {
			dec8(&c.blkReadyDisk[r.block])
		}
	}
	return true
}

// deleteReplica deletes the block replicas of drec di whose action is a
// (Delete or Dismiss) and marks the dataset's replicas for re-evaluation.
func (c *cycle) deleteReplica(di int32, a policy.Action) int64 {
	d := &c.drs[di]
	st := &c.sites[d.site]
	var n int64
	c.account(di, -1)
	for i := d.first; i < d.first+d.n; i++ {
		r := &c.brs[i]
		if r.flags&brGone == 0 && r.action == a && c.deleteBR(i, d, st) {
			n += r.size
		}
	}
	if n > 0 {
		c.touch(d.ds, st.site.ID, true)
	} else if c.reownedAny(d) {
		c.touch(d.ds, st.site.ID, false) // owners changed; the copy is still full
	}
	c.account(di, +1)
	return n
}

// reowns reports whether deleting r is a hand-over instead: r was decided
// by a block line, its owner owns blocks, and the dataset replica's owner
// owns datasets.
func (c *cycle) reowns(r *brec, d *drec) bool {
	if r.rule < 0 || !c.pol.Rules[r.rule].Action.BlockLevel() || d.owner == inventory.NoGroup || r.groupID() == d.owner {
		return false
	}
	return int(r.group) < len(c.levels) && int(d.owner) < len(c.levels) &&
		c.levels[r.group] == inventory.OwnBlock && c.levels[d.owner] == inventory.OwnDataset
}

func (c *cycle) reownedAny(d *drec) bool {
	for i := d.first; i < d.first+d.n; i++ {
		if c.brs[i].flags&brReowned != 0 {
			return true
		}
	}
	return false
}

// touch marks a dataset changed: every replica of it is re-evaluated next
// iteration, and with broken its copy at site is no longer full.
func (c *cycle) touch(ds inventory.DatasetID, site inventory.SiteID, broken bool) {
	info := &c.ds[ds]
	if broken {
		info.full = slices.DeleteFunc(info.full, func(f fullRep) bool { return f.site == site })
	}
	for _, di := range info.drs {
		if !c.drs[di].dirty {
			c.drs[di].dirty = true
			c.dirty = append(c.dirty, di)
		}
	}
}

// run executes the iterations and returns their number.
func (c *cycle) run(ctx context.Context) (int, error) {
	for i := range c.sites {
		st := &c.sites[i]
		st.triggered = st.target && c.cp.Triggered(st)
		st.wasTriggered = st.triggered
	}
	c.order.init(c)
	iters := 0
	var cands []int32
	var v view
	for {
		if err := c.reevaluate(ctx); err != nil {
			return iters, err
		}
		// Delete lines act regardless of watermarks.
		for len(c.delQueue) > 0 {
			q := c.delQueue
			c.delQueue = nil
			for _, di := range q {
				c.drs[di].queuedDel = false
				c.deleteReplica(di, policy.ActionDelete)
			}
		}
		if c.pol.Static {
			c.runStatic(&v)
			return iters + 1, nil
		}
		// The candidate site with the highest protected fraction.
		best := -1
		var bestFrac float64
		for i := range c.sites {
			st := &c.sites[i]
			if !st.triggered || st.dismissed <= 0 {
				continue
			}
			frac := float64(st.protected) / float64(max(st.quota, 1))
			if best < 0 || frac > bestFrac {
				best, bestFrac = i, frac
			}
		}
		if best < 0 {
			return iters, nil
		}
		iters++
		st := &c.sites[best]
		st.iters++
		cands = c.order.candidates(c, int32(best), &v)
		limit := c.opts.DeletionPerIteration * float64(st.quota)
		if st.quota <= 0 {
			// No quota: a step of a fraction of nothing would re-sort the
			// site's candidates after every replica; Until still stops it.
			limit = math.Inf(1)
		}
		var deleted int64
		for _, di := range cands {
			// Until is checked before every replica (including the first:
			// a site triggered while already past Until deletes nothing),
			// so nothing goes after the replica that made it hold.
			if c.cp.Released(st) {
				st.triggered, st.released = false, true
				break
			}
			deleted += c.deleteReplica(di, policy.ActionDismiss)
			if float64(deleted) > limit {
				break
			}
		}
		if c.cp.Released(st) {
			st.triggered, st.released = false, true
		}
		if deleted == 0 && st.triggered {
			// Nothing could go (every candidate hit a safety rule after
			// re-accounting): stop picking this site.
			st.triggered = false
		}
		if err := ctx.Err(); err != nil {
			return iters, err
		}
	}
}

// candOrder keeps every site's Dismiss candidates in Order from one of the
// site's iterations to the next. Between two iterations at a site only the
// drecs re-accounted since (re-evaluated because a copy of their dataset
// changed, or deleted from) can change place, enter or leave: the Order
// keys read a dataset replica's own block replicas and its dataset's state
// (sizes, times, accesses, full copies), which change only through
// deleteReplica and touch, and touch has every replica of the dataset
// re-evaluated, hence re-accounted. So a sort recomputes the keys of the
// changed drecs only, sorts them and merges them into the others, which
// keep their order; re-sorting every candidate of the site with fresh keys
// at every iteration made this half of the iteration phase. The order is
// the full sort's: keys, then the position in the site's drecs.
type candOrder struct {
	nk      int
	pos     []int32 // by drec: index in its site's drecs (the last key)
	pending []bool  // by drec: re-accounted since its site's last sort
	sites   []siteOrder

	// scratch
	idx        []int32
	fresh      []int32
	freshKeys  []float64
	sortedKeys []float64
}

// siteOrder is one site's candidates as of its last sort.
type siteOrder struct {
	sorted  bool
	cands   []int32
	keys    []float64 // nk per candidate
	changed []int32   // drecs re-accounted since (pending set)
	// the buffers of the next merge
	nextCands []int32
	nextKeys  []float64
}

// verifyOrder makes every incremental sort check itself against a full
// sort with fresh keys (tests set it).
var verifyOrder = false

func (o *candOrder) init(c *cycle) {
	o.nk = len(c.pol.Order)
	if o.nk == 0 {
		return // the order is the site's drecs order: nothing to keep
	}
	o.pos = hugePages(make([]int32, len(c.drs)))
	o.pending = hugePages(make([]bool, len(c.drs)))
	o.sites = make([]siteOrder, len(c.sites))
	for si := range c.sites {
		for i, di := range c.sites[si].drs {
			o.pos[di] = int32(i)
		}
	}
}

// changed notes that drec di was re-accounted.
func (o *candOrder) changed(c *cycle, di int32) {
	if o.sites == nil || o.pending[di] {
		return
	}
	so := &o.sites[c.drs[di].site]
	if !so.sorted { // its first sort reads everything
		return
	}
	o.pending[di] = true
	so.changed = append(so.changed, di)
}

// candidates returns site si's drecs with Dismiss candidates (dism > 0) in
// Order. The slice is valid until the site's next call.
func (o *candOrder) candidates(c *cycle, si int32, v *view) []int32 {
	st := &c.sites[si]
	if o.nk == 0 {
		out := o.fresh[:0]
		for _, di := range st.drs {
			if c.drs[di].dism > 0 {
				out = append(out, di)
			}
		}
		o.fresh = out
		return out
	}
	so := &o.sites[si]
	nk := o.nk
	if !so.sorted {
		so.cands = so.cands[:0]
		for _, di := range st.drs {
			if c.drs[di].dism > 0 {
				so.cands = append(so.cands, di)
			}
		}
		so.cands, so.keys = o.sortWithKeys(c, v, so.cands, so.keys[:0])
		so.sorted = true
		return so.cands
	}
	// The unchanged candidates, in their order, with their keys.
	w := 0
	for i, di := range so.cands {
		if o.pending[di] {
			continue
		}
		so.cands[w] = di
		copy(so.keys[w*nk:(w+1)*nk], so.keys[i*nk:(i+1)*nk])
		w++
	}
	old, oldKeys := so.cands[:w], so.keys[:w*nk]
	// The changed ones that are candidates, with fresh keys.
	fresh := o.fresh[:0]
	for _, di := range so.changed {
		o.pending[di] = false
		if c.drs[di].dism > 0 {
			fresh = append(fresh, di)
		}
	}
	so.changed = so.changed[:0]
	fresh, freshKeys := o.sortWithKeys(c, v, fresh, o.freshKeys[:0])
	o.fresh, o.freshKeys = fresh, freshKeys
	// Merge.
	out, outKeys := so.nextCands[:0], so.nextKeys[:0]
	i, j := 0, 0
	for i < len(old) && j < len(fresh) {
		if o.compare(oldKeys[i*nk:(i+1)*nk], old[i], freshKeys[j*nk:(j+1)*nk], fresh[j]) < 0 {
			out, outKeys = append(out, old[i]), append(outKeys, oldKeys[i*nk:(i+1)*nk]...)
			i++
		} else {
			out, outKeys = append(out, fresh[j]), append(outKeys, freshKeys[j*nk:(j+1)*nk]...)
			j++
		}
	}
	out, outKeys = append(out, old[i:]...), append(outKeys, oldKeys[i*nk:]...)
	out, outKeys = append(out, fresh[j:]...), append(outKeys, freshKeys[j*nk:]...)
	so.nextCands, so.nextKeys = so.cands, so.keys
	so.cands, so.keys = out, outKeys
	if verifyOrder {
		o.verify(c, si, v)
	}
	return so.cands
}

// compare orders two candidates: keys, then position in the site's drecs.
// Positions differ, so it never returns 0 for different drecs.
func (o *candOrder) compare(ka []float64, a int32, kb []float64, b int32) int {
	for i := range ka {
		if r := cmp.Compare(ka[i], kb[i]); r != 0 {
			return r
		}
	}
	return cmp.Compare(o.pos[a], o.pos[b])
}

// sortWithKeys sorts cands (drecs of one site) in Order and returns them
// with their keys (nk per candidate, appended to keys).
func (o *candOrder) sortWithKeys(c *cycle, v *view, cands []int32, keys []float64) ([]int32, []float64) {
	nk := o.nk
	unsorted := o.sortedKeys[:0]
	v.c, v.one = c, -1
	for _, di := range cands {
		v.d = di
		unsorted = c.cp.Order.Key(v, unsorted)
	}
	o.sortedKeys = unsorted
	idx := o.idx[:0]
	for i := range cands {
		idx = append(idx, int32(i))
	}
	o.idx = idx
	slices.SortFunc(idx, func(a, b int32) int {
		return o.compare(unsorted[int(a)*nk:int(a)*nk+nk], cands[a], unsorted[int(b)*nk:int(b)*nk+nk], cands[b])
	})
	// idx is a permutation: apply it through the keys' order.
	for _, i := range idx {
		keys = append(keys, unsorted[int(i)*nk:int(i)*nk+nk]...)
	}
	for k, i := range idx {
		idx[k] = cands[i]
	}
	copy(cands, idx)
	return cands, keys
}

// verify panics unless site si's kept order is what sorting all its
// candidates with fresh keys gives.
func (o *candOrder) verify(c *cycle, si int32, v *view) {
	var all []int32
	for _, di := range c.sites[si].drs {
		if c.drs[di].dism > 0 {
			all = append(all, di)
		}
	}
	_, want := c.sortCandidates(all, nil, v)
	if !slices.Equal(want, o.sites[si].cands) {
		panic(fmt.Sprintf("detox: kept candidate order at site %d differs from a full sort:\n%v\n%v", si, o.sites[si].cands, want))
	}
}

// sortCandidates orders drecs by the policy's Order keys (ties: input
// order, which is by dataset id).
func (c *cycle) sortCandidates(cands []int32, keys []float64, v *view) ([]float64, []int32) {
	nk := len(c.pol.Order)
	if nk == 0 {
		return keys, cands
	}
	keys = keys[:0]
	v.c, v.one = c, -1
	for _, di := range cands {
		v.d = di
		keys = c.cp.Order.Key(v, keys)
	}
	idx := make([]int32, len(cands))
	for i := range idx {
		idx[i] = int32(i)
	}
	// The index is the last key, so an unstable sort is deterministic.
	slices.SortFunc(idx, func(a, b int32) int {
		ka, kb := keys[int(a)*nk:int(a)*nk+nk], keys[int(b)*nk:int(b)*nk+nk]
		for i := range ka {
			if r := cmp.Compare(ka[i], kb[i]); r != 0 {
				return r
			}
		}
		return cmp.Compare(a, b)
	})
	out := make([]int32, len(cands))
	for i, j := range idx {
		out[i] = cands[j]
	}
	return keys, out
}

// runStatic is Algo Static: one global order over every candidate at a
// triggered site, deleting until each site's Until holds.
func (c *cycle) runStatic(v *view) {
	var cands []int32
	for di := range c.drs {
		if c.drs[di].dism > 0 && c.sites[c.drs[di].site].triggered {
			cands = append(cands, int32(di))
		}
	}
	_, cands = c.sortCandidates(cands, nil, v)
	for _, di := range cands {
		st := &c.sites[c.drs[di].site]
		if !st.triggered {
			continue
		}
		if c.cp.Released(st) {
			st.triggered, st.released = false, true
			continue
		}
		c.deleteReplica(di, policy.ActionDismiss)
	}
}

// plan turns the final cycle state into a Plan.
func (c *cycle) plan() *Plan {
	p := &Plan{Partition: c.pol.Partition, PartitionID: c.part, Policy: c.pol, At: c.at, Seq: c.snap.Seq(), snap: c.snap,
		Replicas: hugePages(make([]ReplicaDecision, 0, len(c.drs)+len(c.drs)/8))}
	ndel := 0
	for i := range c.sites {
		ndel += c.sites[i].delReps
	}
	p.Deletions = hugePages(make([]Deletion, 0, ndel))
	for i := range c.sites {
		st := &c.sites[i]
		if !st.target {
			continue
		}
		p.Sites = append(p.Sites, SitePlan{Site: st.site.ID, Name: st.site.Name, Quota: st.quota, Before: st.before,
			After: st.used, Triggered: st.wasTriggered, Released: c.cp.Released(st),
			Deleted: st.deleted, DeletedReps: st.delReps, Files: st.delFiles, Protected: st.protected, Iterations: st.iters})
	}
	// Per drec: each block replica's decision key, then one decision per
	// distinct key in the order keys first appear (usually one). gidx
	// holds the key index of each block replica of the drec: the plan has
	// ten million of them at CMS scale, so nothing here allocates per
	// block replica.
	var groups []decisionKey
	var gidx []int32
	var counts []int32
	for di := range c.drs {
		d := &c.drs[di]
		st := &c.sites[d.site]
		groups, gidx = groups[:0], gidx[:0]
		for i := d.first; i < d.first+d.n; i++ {
			r := &c.brs[i]
			k := c.decisionKey(r, st)
			switch {
			case k.reason == ReasonReowned:
				p.Reassignments = append(p.Reassignments, Reassignment{Block: r.block, Site: st.site.ID, Dataset: d.ds, From: r.groupID(), To: d.owner, Size: r.size})
			case k.dec == DecisionDelete:
				p.Deletions = append(p.Deletions, Deletion{Block: r.block, Site: st.site.ID, Dataset: d.ds, Size: r.size, Files: r.files, Line: c.line(r.rule), Reason: k.reason, Seq: int(r.seq), LastCopy: r.flags&brLastCopy != 0})
			}
			gi := slices.Index(groups, k)
			if gi < 0 {
				groups = append(groups, k)
				gi = len(groups) - 1
			}
			gidx = append(gidx, int32(gi))
		}
		if len(groups) == 1 {
			k := groups[0]
			rd := ReplicaDecision{Dataset: d.ds, Site: st.site.ID, Decision: k.dec, Action: k.action, Reason: k.reason, Line: c.line(k.rule)}
			for i := d.first; i < d.first+d.n; i++ {
				rd.Size += c.brs[i].size
				rd.Files += int64(c.brs[i].files)
			}
			p.Replicas = append(p.Replicas, rd)
			continue
		}
		counts = append(counts[:0], make([]int32, len(groups))...)
		for _, gi := range gidx {
			counts[gi]++
		}
		for gi, k := range groups {
			rd := ReplicaDecision{Dataset: d.ds, Site: st.site.ID, Decision: k.dec, Action: k.action, Reason: k.reason, Line: c.line(k.rule),
				Blocks: make([]inventory.BlockID, 0, counts[gi])}
			for j, g := range gidx {
				if g == int32(gi) {
					r := &c.brs[d.first+int32(j)]
					rd.Size += r.size
					rd.Files += int64(r.files)
					rd.Blocks = append(rd.Blocks, r.block)
				}
			}
			p.Replicas = append(p.Replicas, rd)
		}
	}
	return p
}

// decisionKey is what block replicas of a dataset replica share to be
// reported as one ReplicaDecision.
type decisionKey struct {
	dec    Decision
	action policy.Action
	rule   int16
	reason Reason
}

// decisionKey returns r's final decision and its reason.
func (c *cycle) decisionKey(r *brec, st *siteState) decisionKey {
	k := decisionKey{action: r.action, rule: r.rule}
	switch {
	case r.flags&brReowned != 0:
		k.dec, k.reason = DecisionKeep, ReasonReowned
	case r.flags&brDeleted != 0:
		k.dec, k.reason = DecisionDelete, ReasonDismissed
		if r.action == policy.ActionDelete {
			k.reason = ReasonDeleteLine
		}
		if r.flags&brLastCopy != 0 {
			k.reason = ReasonLastCopyDeleted
		}
	case r.guard != guardNone:
		k.dec, k.reason = DecisionProtect, r.guard.reason()
	case r.action == policy.ActionProtect:
		k.dec, k.reason = DecisionProtect, ReasonRule
	case r.action == policy.ActionIgnore:
		k.dec, k.reason = DecisionIgnore, ReasonRule
	default: // Dismiss not deleted
		k.dec, k.reason = DecisionKeep, ReasonNotTriggered
		if st.released || (st.iters > 0 && !st.triggered) {
			k.reason = ReasonUntilReached
		}
	}
	if r.rule < 0 && k.reason == ReasonRule {
		k.reason = ReasonDefault
	}
	return k
}

// line is the policy line of rule index ri (0 for the default).
func (c *cycle) line(ri int16) int {
	if ri < 0 {
		return 0
	}
	return c.pol.Rules[ri].Line
}

// String is a one-line summary for logs.
func (p *Plan) String() string {
	return fmt.Sprintf("detox plan %s: %d replica decisions, %d deletions (%d bytes), %d iterations",
		p.Partition, len(p.Replicas), len(p.Deletions), p.DeletedBytes(), p.Iterations)
}
