package detox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// ErrUnknownPartition: the policy's partition is not in the inventory.
var ErrUnknownPartition = errors.New("unknown partition")

// block replica flags in the cycle.
const (
	brComplete uint8 = 1 << iota
	brLocked
	brDeleted  // deleted by this cycle
	brStripped // decided by a block line during the current evaluation walk
	brReowned  // handed to the dataset replica's owner instead of deleted
	brLastCopy // deleted although no other copy survives (partition opt-in)

	brGone = brDeleted | brReowned // out of the cycle
)

// brec is a block replica of the partition at a target site. It is kept
// small (40 bytes): a CMS-scale cycle holds ten million of them.
type brec struct {
	size       int64
	lastUpdate int64
	block      inventory.BlockID
	group      inventory.GroupID
	files      int32
	seq        int32 // deletion order, for deleted ones
	rule       int16 // index into Policy.Rules, -1 for the default
	flags      uint8
	action     policy.Action // decided action
	guard      guardCode     // safety rule that overrode a Delete/Dismiss
}

// guardCode is a safety Reason in one byte.
type guardCode uint8

const (
	guardNone guardCode = iota
	guardLocked
	guardLastCopy
)

func (g guardCode) reason() Reason {
	switch g {
	case guardLocked:
		return ReasonLocked
	case guardLastCopy:
		return ReasonLastCopy
	}
	return ""
}

// drec is a dataset replica: the block replicas of one dataset at one
// target site that are in the partition. Its brecs are contiguous.
type drec struct {
	ds         inventory.DatasetID
	owner      inventory.GroupID // the dataset replica's group
	site       int32             // index into cycle.sites
	first, n   int32
	dirty      bool
	queuedDel  bool
	prot, dism int64 // protected and dismissed (candidate) bytes, as last accounted
}

// siteState is a site as the cycle sees it.
type siteState struct {
	site         inventory.Site
	quota        int64
	before       int64
	used         int64 // physical bytes in the partition, minus this cycle's deletions
	target       bool
	triggered    bool
	wasTriggered bool
	released     bool
	protected    int64
	dismissed    int64
	deleted      int64
	delFiles     int64
	delReps      int
	iters        int
	drs          []int32
}

// fullRep is a full, complete copy of a dataset at a site.
type fullRep struct {
	site   inventory.SiteID
	ready  bool
	disk   bool
	owner  inventory.GroupID
	owners []inventory.GroupID // set when the block replicas have several owners
}

// dsInfo is what the cycle knows of a dataset.
type dsInfo struct {
	d            inventory.Dataset
	release      string
	maxBlockTime int64
	tapeBlocks   int32 // blocks with a complete tape replica
	full         []fullRep
	drs          []int32
	flags        uint8
	demand       float64
	numAccess    int64
	lastAccess   int64
	rank         float64 // usage rank, computed once per cycle
	exists       bool
}

const (
	dsTapeRequested uint8 = 1 << iota
	dsUnhandled
	dsProtectedSite
	dsUnknownCatalog
	dsLatestRelease
)

// block arrays' flags.
const (
	blkTape uint8 = 1 << iota
	blkIncomplete
)

// cycle is the working state of one Plan call.
type cycle struct {
	cp      *policy.CompiledPolicy[*view, *siteState]
	pol     *policy.Policy
	snap    *inventory.Snapshot
	part    inventory.PartitionID
	at      time.Time
	now     int64
	opts    PlanOptions
	in      Inputs
	groups  []string // group names by id; "None" for the null group
	levels  []inventory.OwnershipLevel
	sites   []siteState
	siteIdx map[inventory.SiteID]int32
	ds      []dsInfo
	brs     []brec
	drs     []drec

	blkDS        []inventory.DatasetID
	blkCopies    []uint8 // replicas inventory.CountsAsCopy accepts, saturating: the last-copy rule
	blkDisk      []uint8 // complete disk replicas (not pending deletion) in the CopyScope, saturating
	blkReadyDisk []uint8 // complete disk replicas at READY sites, whole inventory
	blkFlags     []uint8
	blkTime      []int64 // block last update

	// copies is the one last-copy rule (inventory.DeletionGuard): every
	// deletion of the cycle is admitted through it, in deletion order.
	copies *inventory.DeletionGuard
	order  candOrder // the sites' Dismiss candidates in Order (run.go)

	protectedEnf map[ReplicaKey]bool
	localAccess  map[ReplicaKey]int64

	delQueue []int32
	delSeq   int32
	dirty    []int32 // drecs to re-evaluate (drec.dirty set), nil = all
}

func grow[T any](s []T, i int) []T {
	if i < len(s) {
		return s
	}
	n := 2*len(s) + 1024
	if n <= i {
		n = i + 1024
	}
	out := make([]T, n)
	copy(out, s)
	return out
}

func inc8(v *uint8) {
	if *v < math.MaxUint8 {
		*v++
	}
}

func dec8(v *uint8) {
	if *v > 0 && *v < math.MaxUint8 {
		*v--
	}
}

// build fills the cycle from the snapshot and the producers.
func (c *cycle) build(ctx context.Context) error {
	snap := c.snap
	p, ok := snap.PartitionByName(c.pol.Partition)
	if !ok {
		return fmt.Errorf("%w %q (policy %s)", ErrUnknownPartition, c.pol.Partition, c.pol.File)
	}
	c.part = p.ID
	for _, g := range snap.Groups() {
		c.groups = grow(c.groups, int(g.ID))
		c.levels = grow(c.levels, int(g.ID))
		c.groups[g.ID], c.levels[g.ID] = g.Name, g.Level
	}
	if len(c.groups) == 0 {
		c.groups, c.levels = make([]string, 1), make([]inventory.OwnershipLevel, 1)
	}
	c.groups[0] = "None"

	// Datasets and blocks. Ids are dense, so the counts are good first
	// guesses for the arrays indexed by them.
	pre := snap.Counts()
	c.ds = make([]dsInfo, pre.Datasets+1)
	c.blkDS, c.blkTime = make([]inventory.DatasetID, pre.Blocks+1), make([]int64, pre.Blocks+1)
	for d := range snap.Datasets() {
		c.ds = grow(c.ds, int(d.ID))
		info := &c.ds[d.ID]
		info.d, info.exists = d, true
		info.release = strings.TrimPrefix(d.SoftwareVersion, "CMSSW_")
		for b := range snap.Blocks(d.ID) {
			c.blkDS = grow(c.blkDS, int(b.ID))
			c.blkTime = grow(c.blkTime, int(b.ID))
			c.blkDS[b.ID], c.blkTime[b.ID] = d.ID, b.LastUpdate
			info.maxBlockTime = max(info.maxBlockTime, b.LastUpdate)
		}
	}
	nb := len(c.blkDS)
	c.blkDisk, c.blkReadyDisk, c.blkFlags = make([]uint8, nb), make([]uint8, nb), make([]uint8, nb)
	c.blkCopies = make([]uint8, nb)
	c.copies = inventory.NewBulkDeletionGuard(snap, nb)
	if err := ctx.Err(); err != nil {
		return err
	}

	// The two passes over the replicas read the snapshot and write
	// disjoint state (block arrays and dsInfo.full/tapeBlocks; sites, brs,
	// drs and dsInfo.drs), so they run side by side.
	// Both passes walk sites' replicas through one slot-ordered index: the
	// snapshot's per-site lists are in insertion order, scattered over the
	// whole replica array, and walking them is memory-latency bound.
	sites := snap.Sites()
	idx := snap.SiteIndex()
	c.siteIdx = make(map[inventory.SiteID]int32, len(sites))
	errc := make(chan error, 1)
	if c.opts.workers() > 1 {
		go func() { errc <- c.countCopies(ctx, idx, sites, nb) }()
	} else {
		errc <- c.countCopies(ctx, idx, sites, nb)
	}
	err2 := c.collectTargets(ctx, idx, sites, nb)
	if err := errors.Join(<-errc, err2); err != nil {
		return err
	}
	return c.applyInputs()
}

// countCopies reads every replica of every site: the last-copy counts,
// tape coverage and transfer-source counts over the whole inventory, and
// the copy counts and full copies the policy variables read in the
// cycle's CopyScope. cnt/own are per dataset, reset through touched.
func (c *cycle) countCopies(ctx context.Context, idx *inventory.SiteIndex, sites []inventory.Site, nb int) error {
	scoped := c.opts.CopyCounts.partition()
	cnt := make([]int32, len(c.ds))
	own := make([]inventory.GroupID, len(c.ds))
	mixed := map[inventory.DatasetID][]inventory.GroupID{}
	var touched []inventory.DatasetID
	// count records br as a complete copy for the policy variables.
	count := func(br inventory.BlockReplica, disk bool) {
		b := br.Block
		if disk {
			inc8(&c.blkDisk[b])
		}
		ds := c.blkDS[b]
		if cnt[ds] == 0 {
			touched = append(touched, ds)
			own[ds] = br.Group
		} else if own[ds] != br.Group {
			m := mixed[ds]
			if len(m) == 0 {
				m = append(m, own[ds])
			}
			if !containsGroup(m, br.Group) {
				m = append(m, br.Group)
			}
			mixed[ds] = m
		}
		cnt[ds]++
	}
	usable := func(br inventory.BlockReplica) bool {
		return !br.PendingDeletion && int(br.Block) < nb && br.Complete && !br.Suspicious
	}
	for _, s := range sites {
		disk, ready, tape := s.StorageType == inventory.StorageDisk, s.Status == inventory.SiteReady, s.StorageType == inventory.StorageMSS
		touched = touched[:0]
		clear(mixed)
		for br := range idx.BlockReplicasAtSite(s.ID) {
			if br.PendingDeletion || int(br.Block) >= nb {
				continue
			}
			b := br.Block
			// A suspicious replica is no complete copy for any purpose.
			if !usable(br) {
				c.blkFlags[b] |= blkIncomplete
				continue
			}
			if inventory.CountsAsCopy(s, br) {
				inc8(&c.blkCopies[b])
			}
			if disk && ready {
				inc8(&c.blkReadyDisk[b])
			}
			if tape && c.blkFlags[b]&blkTape == 0 {
				c.blkFlags[b] |= blkTape
				c.ds[c.blkDS[b]].tapeBlocks++
			}
			if !scoped {
				count(br, disk)
			}
		}
		// The partition's view: its block replicas at its target sites.
		// Target-ness is decided here again, not read from collectTargets,
		// which runs concurrently; both evaluate the same On lines on the
		// same site and usage.
		if scoped && c.isTarget(s) {
			for br := range idx.BlockReplicasInPartition(s.ID, c.part) {
				if usable(br) {
					count(br, disk)
				}
			}
		}
		for _, ds := range touched {
			if cnt[ds] == c.ds[ds].d.NumBlocks {
				c.ds[ds].full = append(c.ds[ds].full, fullRep{site: s.ID, ready: ready, disk: disk, owner: own[ds], owners: mixed[ds]})
			}
			cnt[ds] = 0
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}

	return nil
}

// isTarget reports whether an On line matches the site, with the
// partition's usage there.
func (c *cycle) isTarget(s inventory.Site) bool {
	st := siteState{site: s}
	u := c.snap.Usage(s.ID, c.part)
	st.quota, st.before, st.used = u.Quota, u.Physical, u.Physical
	return c.cp.IsTarget(&st)
}

// collectTargets finds the target sites and groups the partition's block
// replicas there into drecs. brs is sized for the worst case up front:
// growing a slice of ten million records by appending copies it over and
// over.
func (c *cycle) collectTargets(ctx context.Context, idx *inventory.SiteIndex, sites []inventory.Site, nb int) error {
	snap := c.snap
	cnt := make([]int32, len(c.ds))
	counts := snap.Counts()
	c.brs = make([]brec, 0, counts.BlockReplicas)
	c.drs = make([]drec, 0, counts.DatasetReplicas)
	var tmp []brec
	var tmpDS []inventory.DatasetID
	for _, s := range sites {
		st := siteState{site: s}
		u := snap.Usage(s.ID, c.part)
		st.quota, st.before, st.used = u.Quota, u.Physical, u.Physical
		c.sites = append(c.sites, st)
		si := int32(len(c.sites) - 1)
		c.siteIdx[s.ID] = si
		sp := &c.sites[si]
		sp.target = c.isTarget(s)
		if !sp.target {
			continue
		}
		tmp, tmpDS = tmp[:0], tmpDS[:0]
		for br := range idx.BlockReplicasInPartition(s.ID, c.part) {
			if int(br.Block) >= nb {
				continue
			}
			r := brec{block: br.Block, group: br.Group, files: br.NumFiles, size: br.Size, lastUpdate: br.LastUpdate}
			if br.Complete && !br.Suspicious {
				r.flags |= brComplete
			}
			tmp = append(tmp, r)
			tmpDS = append(tmpDS, c.blkDS[br.Block])
		}
		c.groupBySite(si, tmp, tmpDS, cnt)
		// The dataset replicas' owners (the site's drecs are sorted by dataset).
		drs := c.sites[si].drs
		for r := range idx.DatasetReplicasAtSite(s.ID) {
			k, found := slices.BinarySearchFunc(drs, r.Dataset, func(di int32, ds inventory.DatasetID) int { return cmp.Compare(c.drs[di].ds, ds) })
			if found {
				c.drs[drs[k]].owner = r.Group
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func containsGroup(gs []inventory.GroupID, g inventory.GroupID) bool {
	for _, x := range gs {
		if x == g {
			return true
		}
	}
	return false
}

// groupBySite counting-sorts one site's block replicas by dataset into
// drecs (ascending dataset id, so plans come out sorted by site then
// dataset). cnt is a zeroed per-dataset scratch array; it is left zeroed.
func (c *cycle) groupBySite(si int32, tmp []brec, tmpDS []inventory.DatasetID, cnt []int32) {
	if len(tmp) == 0 {
		return
	}
	minDS, maxDS := tmpDS[0], tmpDS[0]
	for _, ds := range tmpDS {
		cnt[ds]++
		minDS, maxDS = min(minDS, ds), max(maxDS, ds)
	}
	base := int32(len(c.brs))
	if need := len(c.brs) + len(tmp); need <= cap(c.brs) {
		c.brs = c.brs[:need] // every slot is written below
	} else {
		c.brs = append(c.brs, make([]brec, len(tmp))...)
	}
	// Turn counts into start offsets and create the drecs.
	off := base
	for ds := minDS; ds <= maxDS; ds++ {
		n := cnt[ds]
		if n == 0 {
			continue
		}
		di := int32(len(c.drs))
		c.drs = append(c.drs, drec{ds: ds, site: si, first: off})
		c.ds[ds].drs = append(c.ds[ds].drs, di)
		c.sites[si].drs = append(c.sites[si].drs, di)
		cnt[ds] = off
		off += n
	}
	for i, ds := range tmpDS {
		c.brs[cnt[ds]] = tmp[i]
		cnt[ds]++
	}
	for _, di := range c.sites[si].drs {
		d := &c.drs[di]
		d.n = cnt[d.ds] - d.first
		// Block order, not the order the inventory keeps replicas in:
		// deletion order and plans must not depend on memory layout (a
		// server that loaded the inventory and one that built it by
		// replaying writes plan the same). Slot order is nearly block
		// order, so this is close to a linear pass.
		slices.SortFunc(c.brs[d.first:d.first+d.n], func(a, b brec) int { return cmp.Compare(a.block, b.block) })
	}
	for ds := minDS; ds <= maxDS; ds++ {
		cnt[ds] = 0
	}
}

// applyInputs folds the producers' answers into the cycle's records.
func (c *cycle) applyInputs() error {
	need := map[string]bool{}
	for _, a := range c.pol.RequiredAttrs() {
		need[a] = true
	}
	in := &c.in
	if err := c.applyLocks(in.Locks); err != nil { // needed or not: locks are a safety rule
		return err
	}
	if need[policy.ProducerAccesses] && in.Accesses != nil {
		c.localAccess = map[ReplicaKey]int64{}
		for _, a := range in.Accesses {
			d, ok := c.snap.DatasetByName(a.Dataset)
			if !ok {
				continue
			}
			info := &c.ds[d.ID]
			info.numAccess += a.NumAccess
			info.lastAccess = max(info.lastAccess, a.LastAccess)
			if s, ok := c.snap.SiteByName(a.Site); ok {
				k := ReplicaKey{d.ID, s.ID}
				c.localAccess[k] = max(c.localAccess[k], a.LastAccess)
			}
		}
	}
	if need[policy.ProducerAccesses] {
		// The rank depends on nothing a deletion changes: compute it once.
		for i := range c.ds {
			if c.ds[i].exists {
				c.ds[i].rank = usageRank(&c.ds[i], c.now)
			}
		}
	}
	if need[policy.ProducerEnforcer] && in.EnforcerProtected != nil {
		// A copy: enforcerProtection adds to it, and in belongs to the caller.
		c.protectedEnf = make(map[ReplicaKey]bool, len(in.EnforcerProtected))
		for k, v := range in.EnforcerProtected {
			c.protectedEnf[k] = v
		}
	}
	if need[policy.ProducerEnforcer] && len(in.EnforcerRules) > 0 {
		if err := c.enforcerProtection(in.EnforcerRules); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		p   string
		m   map[inventory.DatasetID]bool
		bit uint8
	}{
		{policy.ProducerTapeRequest, in.TapeRequested, dsTapeRequested},
		{policy.ProducerUnhandledCopy, in.UnhandledCopies, dsUnhandled},
		{policy.ProducerProtectedSite, in.OnProtectedSite, dsProtectedSite},
		{policy.ProducerCatalog, in.UnknownInCatalog, dsUnknownCatalog},
		{policy.ProducerRelease, in.LatestRelease, dsLatestRelease},
	} {
		if !need[f.p] {
			continue
		}
		for id, v := range f.m {
			if v && id > 0 && int(id) < len(c.ds) {
				c.ds[id].flags |= f.bit
			}
		}
	}
	if need[policy.ProducerDemand] {
		for id, v := range in.Demand {
			if id > 0 && int(id) < len(c.ds) {
				c.ds[id].demand = v
			}
		}
	}
	return nil
}

// applyLocks flags locked block replicas. Locks are a safety rule, so they
// are loaded whenever a LockSource is configured, even if the policy does
// not mention blockreplica.is_locked.
func (c *cycle) applyLocks(locks []Lock) error {
	ix, err := newLockIndex(c.snap, locks, c.at)
	if err != nil {
		return err
	}
	touched := map[inventory.DatasetID]bool{}
	for d := range ix.datasets {
		touched[d] = true
	}
	for b := range ix.blocks {
		if blk, ok := c.snap.Block(b); ok {
			touched[blk.Dataset] = true
		}
	}
	for d := range touched {
		if int(d) <= 0 || int(d) >= len(c.ds) {
			continue
		}
		for _, di := range c.ds[d].drs {
			dr := &c.drs[di]
			site := c.sites[dr.site].site.ID
			for i := dr.first; i < dr.first+dr.n; i++ {
				if ix.protects(d, c.brs[i].block, site, c.brs[i].group) {
					c.brs[i].flags |= brLocked
				}
			}
		}
	}
	return nil
}

// enforcerProtection marks the dataset replicas that an enforcer rule with
// protect: true covers: its replicas condition matches the dataset replica
// (all its block replicas in the partition) and, when the rule names
// destinations, one matches the replica's site. Only rule sets for this
// cycle's partition apply.
func (c *cycle) enforcerProtection(sets []*policy.EnforcerRules) error {
	type rule struct {
		reps  []*policy.Matcher[*view]
		dests []*policy.Matcher[*siteState]
	}
	var rules []rule
	rb, sb := c.replicaBindings(), siteBindings()
	for _, set := range sets {
		if set.Partition != c.pol.Partition {
			continue
		}
		for _, r := range set.Rules {
			if !r.Protect {
				continue
			}
			var cr rule
			for _, cond := range r.Replicas {
				m, err := policy.Compile(cond, rb, c.at)
				if err != nil {
					return fmt.Errorf("enforcer rule %s (%s): %w", r.Name, set.File, err)
				}
				cr.reps = append(cr.reps, m)
			}
			for _, cond := range r.Destinations {
				m, err := policy.Compile(cond, sb, c.at)
				if err != nil {
					return fmt.Errorf("enforcer rule %s (%s): %w", r.Name, set.File, err)
				}
				cr.dests = append(cr.dests, m)
			}
			rules = append(rules, cr)
		}
	}
	if c.protectedEnf == nil {
		c.protectedEnf = map[ReplicaKey]bool{}
	}
	v := &view{c: c, one: -1}
	for di := range c.drs {
		d := &c.drs[di]
		st := &c.sites[d.site]
		v.d = int32(di)
		for _, r := range rules {
			if anyMatch(r.dests, st, true) && anyMatch(r.reps, v, false) {
				c.protectedEnf[ReplicaKey{d.ds, st.site.ID}] = true
				break
			}
		}
	}
	return nil
}

// anyMatch reports whether some matcher matches s (empty: ifEmpty).
func anyMatch[S any](ms []*policy.Matcher[S], s S, ifEmpty bool) bool {
	if len(ms) == 0 {
		return ifEmpty
	}
	for _, m := range ms {
		if m.Match(s) {
			return true
		}
	}
	return false
}
