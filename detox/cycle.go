package detox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
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
// at 32 bytes: a CMS-scale cycle holds ten million of them, each byte is
// fresh memory the cycle first-touches, and the evaluation walks them.
// lastUpdate and group are as narrow as the inventory keeps them, so
// nothing is lost.
type brec struct {
	size       int64
	block      inventory.BlockID
	files      int32
	seq        int32  // deletion order, for deleted ones; the dataset while the cycle is built (see placeReplicas)
	lastUpdate uint32 // Unix seconds
	group      uint16 // an inventory.GroupID
	rule       int16  // index into Policy.Rules, -1 for the default
	flags      uint8
	action     policy.Action // decided action
	guard      guardCode     // safety rule that overrode a Delete/Dismiss
}

// groupID is the block replica's group.
func (r *brec) groupID() inventory.GroupID { return inventory.GroupID(r.group) }

// updated is the block replica's last update, in Unix seconds.
func (r *brec) updated() int64 { return int64(r.lastUpdate) }

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
	cp     *policy.CompiledPolicy[*view, *siteState]
	pol    *policy.Policy
	snap   *inventory.Snapshot
	part   inventory.PartitionID
	at     time.Time
	now    int64
	opts   PlanOptions
	in     Inputs
	groups []string // group names by id; "None" for the null group
	levels []inventory.OwnershipLevel
	sites  []siteState
	ds     []dsInfo
	brs    []brec
	drs    []drec

	blkDS        []inventory.DatasetID
	blkCopies    []uint8 // replicas inventory.CountsAsCopy accepts, saturating: the last-copy rule
	blkDisk      []uint8 // complete disk replicas (not pending deletion) in the CopyScope, saturating
	blkReadyDisk []uint8 // complete disk replicas at READY sites, whole inventory
	blkFlags     []uint8

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
//
// Every phase reads the inventory's record arrays front to back (slot
// order) rather than walking per-site or per-block lists: at ten times CMS
// a list walk is one cache and TLB miss per replica, and a site's
// replicas are spread over the whole replica array, so each site walked
// costs a pass over memory. The phases are: datasets and blocks; one count
// pass over the replicas (the per-block copy counters and how many
// replicas each target site contributes); one pass that places each
// target replica of the partition in its site's part of c.brs; then each
// site's part is grouped by dataset into drecs. The two replica passes
// split the slot range over the available cores.
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

	// Datasets and blocks: arrays indexed by id.
	c.ds = hugePages(make([]dsInfo, snap.DatasetSlots()))
	for d := range snap.Datasets() {
		info := &c.ds[d.ID]
		info.d, info.exists = d, true
		info.release = strings.TrimPrefix(d.SoftwareVersion, "CMSSW_")
	}
	nb := int(snap.BlockSlots())
	c.blkDS = hugePages(make([]inventory.DatasetID, nb))
	snap.ScanBlocks(func(b *inventory.BlockScan) {
		c.blkDS[b.ID] = b.Dataset
		info := &c.ds[b.Dataset]
		info.maxBlockTime = max(info.maxBlockTime, b.LastUpdate)
	})
	c.copies = inventory.NewBulkDeletionGuard(snap, nb)

	// Sites, and what the replica passes need of them by site id.
	sites := snap.Sites()
	c.sites = make([]siteState, 0, len(sites))
	var maxSite inventory.SiteID
	for _, s := range sites {
		st := siteState{site: s}
		u := snap.Usage(s.ID, c.part)
		st.quota, st.before, st.used = u.Quota, u.Physical, u.Physical
		st.target = c.cp.IsTarget(&st)
		c.sites = append(c.sites, st)
		maxSite = max(maxSite, s.ID)
	}
	attrs := make([]siteAttr, maxSite+1)
	for i := range c.sites {
		s := &c.sites[i].site
		a := &attrs[s.ID]
		a.si = int32(i)
		a.disk, a.ready, a.tape = s.StorageType == inventory.StorageDisk, s.Status == inventory.SiteReady, s.StorageType == inventory.StorageMSS
		a.usable, a.target = inventory.UsableSite(*s), c.sites[i].target
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	ranges := replicaRanges(snap.ReplicaSlots(), c.opts.workers())
	parts := c.countReplicas(attrs, ranges, nb)
	if err := ctx.Err(); err != nil {
		return err
	}
	bounds := c.placeReplicas(attrs, parts, nb)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.groupSites(ctx, bounds, len(ranges)); err != nil {
		return err
	}
	c.replicaOwners(attrs)
	if !c.opts.CopyCounts.partition() {
		if err := c.fullCopiesInInventory(ctx, nb); err != nil {
			return err
		}
	}
	return c.applyInputs()
}

// siteAttr is what the replica passes read of a site, by site id.
type siteAttr struct {
	si                                int32 // index into cycle.sites
	disk, ready, tape, usable, target bool
}

// replicaRange is a part of the replica slots one goroutine scans, with
// its own counters: the parts are merged afterwards, so the goroutines
// share no writes.
type replicaRange struct {
	from, to int32
	// Per block (the first range writes the cycle's arrays).
	copies, readyDisk, disk, flags []uint8
	// perSite[si]: the range's block replicas of the partition at target
	// site si, which c.brs receives.
	perSite []int32
}

// rangeMin is the fewest replica slots worth splitting over cores (a
// variable so that tests split small inventories).
var rangeMin int32 = 1 << 16

// replicaRanges splits the slots [1, n) into one range per core (at most
// four: beyond that the passes are bound by memory bandwidth).
func replicaRanges(n int32, procs int) []replicaRange {
	k := int32(min(max(procs, 1), 4))
	if n < rangeMin {
		k = 1
	}
	out := make([]replicaRange, k)
	step := (n + k - 1) / k
	for i := range out {
		out[i].from, out[i].to = 1+int32(i)*step, min(n, 1+int32(i+1)*step)
	}
	return out
}

// parallel runs f for each range, side by side.
func parallel(rs []replicaRange, f func(r *replicaRange)) {
	if len(rs) == 1 {
		f(&rs[0])
		return
	}
	var wg sync.WaitGroup
	for i := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); f(&rs[i]) }()
	}
	wg.Wait()
}

// countReplicas fills the per-block counters over the whole inventory:
// the last-copy counts (inventory.CountsAsCopy), READY disk copies for
// the transfer-source rule, tape coverage and incomplete copies, and the
// disk copy counts in the cycle's CopyScope; and counts each target
// site's block replicas in the partition.
func (c *cycle) countReplicas(attrs []siteAttr, rs []replicaRange, nb int) []replicaRange {
	c.blkCopies, c.blkReadyDisk, c.blkDisk, c.blkFlags = hugePages(make([]uint8, nb)), hugePages(make([]uint8, nb)), hugePages(make([]uint8, nb)), hugePages(make([]uint8, nb))
	for i := range rs {
		r := &rs[i]
		if i == 0 {
			r.copies, r.readyDisk, r.disk, r.flags = c.blkCopies, c.blkReadyDisk, c.blkDisk, c.blkFlags
		} else {
			r.copies, r.readyDisk, r.disk, r.flags = hugePages(make([]uint8, nb)), hugePages(make([]uint8, nb)), hugePages(make([]uint8, nb)), hugePages(make([]uint8, nb))
		}
		r.perSite = make([]int32, len(c.sites))
	}
	scoped, part := c.opts.CopyCounts.partition(), c.part
	parallel(rs, func(rg *replicaRange) {
		c.snap.ScanReplicas(rg.from, rg.to, func(br *inventory.ReplicaScan) {
			if int(br.Block) >= nb {
				return
			}
			b, a := br.Block, &attrs[br.Site]
			inPart := a.target && br.InPartition(part)
			if inPart {
				rg.perSite[a.si]++
			}
			if br.PendingDeletion {
				return
			}
			// A suspicious replica is no complete copy for any purpose.
			if !br.Complete || br.Suspicious {
				rg.flags[b] |= blkIncomplete
				return
			}
			if a.usable {
				inc8(&rg.copies[b])
			}
			if a.disk && a.ready {
				inc8(&rg.readyDisk[b])
			}
			if a.tape {
				rg.flags[b] |= blkTape
			}
			// The policy variables' disk copies: in the partition at its
			// target sites, or anywhere (CopyScopeInventory).
			if a.disk && (inPart || !scoped) {
				inc8(&rg.disk[b])
			}
		})
	})
	for _, r := range rs[1:] {
		for b := range nb {
			c.blkCopies[b] = addSat8(c.blkCopies[b], r.copies[b])
			c.blkReadyDisk[b] = addSat8(c.blkReadyDisk[b], r.readyDisk[b])
			c.blkDisk[b] = addSat8(c.blkDisk[b], r.disk[b])
			c.blkFlags[b] |= r.flags[b]
		}
		r.copies, r.readyDisk, r.disk, r.flags = nil, nil, nil, nil
	}
	for b, f := range c.blkFlags {
		if f&blkTape != 0 {
			c.ds[c.blkDS[b]].tapeBlocks++
		}
	}
	return rs
}

// addSat8 adds two saturating counts.
func addSat8(a, b uint8) uint8 {
	if s := int(a) + int(b); s < math.MaxUint8 {
		return uint8(s)
	}
	return math.MaxUint8
}

// placeReplicas fills c.brs with the partition's block replicas at the
// target sites: each site's in one contiguous part, in site order, and
// within it in slot order (each range writes after the ranges before it).
// It returns where each site's part starts (bounds[len(c.sites)] is the
// end). Each brec's seq holds its dataset until groupBySite has grouped
// it: no deletion has an order yet, and a separate array of datasets
// would be 4 more bytes of fresh memory per replica.
func (c *cycle) placeReplicas(attrs []siteAttr, rs []replicaRange, nb int) (bounds []int32) {
	var total int32
	bounds = make([]int32, len(c.sites)+1)
	for si := range c.sites {
		bounds[si] = total
		for i := range rs {
			n := rs[i].perSite[si]
			rs[i].perSite[si] = total // now the range's next slot in c.brs
			total += n
		}
	}
	bounds[len(c.sites)] = total
	c.brs = hugePages(make([]brec, total))
	part := c.part
	parallel(rs, func(rg *replicaRange) {
		next := rg.perSite
		c.snap.ScanReplicas(rg.from, rg.to, func(br *inventory.ReplicaScan) {
			if int(br.Block) >= nb {
				return
			}
			a := &attrs[br.Site]
			if !a.target || !br.InPartition(part) {
				return
			}
			size, files := br.Present()
			// The inventory keeps lastUpdate in 32 bits and group in 16:
			// the narrowing loses nothing.
			r := brec{block: br.Block, group: uint16(br.Group), files: files, size: size, lastUpdate: uint32(br.LastUpdate),
				seq: int32(c.blkDS[br.Block])}
			if br.Complete && !br.Suspicious {
				r.flags |= brComplete
			}
			i := next[a.si]
			next[a.si]++
			c.brs[i] = r
		})
	})
	return bounds
}

// groupSites turns each target site's part of c.brs into drecs, in site
// order, and records the full copies in the partition's view
// (CopyScopePartition). The lists of drecs per site and per dataset, and
// the full copies per dataset, are carved out of one array each once all
// drecs exist: appending to millions of small slices cost more than the
// grouping itself.
func (c *cycle) groupSites(ctx context.Context, bounds []int32, workers int) error {
	scoped := c.opts.CopyCounts.partition()
	// Sites are split into contiguous runs of about equal replica counts,
	// one per worker. A first pass finds each site's datasets, which
	// gives every site its place in c.drs; the second fills the drecs
	// there. Each worker has its own scratch; they write disjoint parts.
	chunks := siteChunks(bounds, workers)
	gs := make([]grouper, len(chunks))
	uniq := make([][]inventory.DatasetID, len(c.sites))
	runChunks := func(f func(g *grouper, si int32)) error {
		var wg sync.WaitGroup
		for w := range chunks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if gs[w].cnt == nil {
					gs[w].cnt = hugePages(make([]int32, len(c.ds)))
				}
				for si := chunks[w][0]; si < chunks[w][1]; si++ {
					if bounds[si] < bounds[si+1] && ctx.Err() == nil {
						f(&gs[w], si)
					}
				}
			}()
		}
		wg.Wait()
		return ctx.Err()
	}
	if err := runChunks(func(g *grouper, si int32) { uniq[si] = g.datasets(c.brs[bounds[si]:bounds[si+1]]) }); err != nil {
		return err
	}
	siteFirst := make([]int32, len(c.sites)+1)
	for si := range c.sites {
		siteFirst[si+1] = siteFirst[si] + int32(len(uniq[si]))
	}
	c.drs = hugePages(make([]drec, siteFirst[len(c.sites)]))
	if err := runChunks(func(g *grouper, si int32) {
		c.groupBySite(si, bounds[si], bounds[si+1], uniq[si], siteFirst[si], g, scoped)
	}); err != nil {
		return err
	}
	// The workers' full copies, in site order (the chunks are in order).
	g := &gs[0]
	for w := 1; w < len(gs); w++ {
		g.full, g.owner = append(g.full, gs[w].full...), append(g.owner, gs[w].owner...)
		for di, o := range gs[w].owners {
			if g.owners == nil {
				g.owners = map[int32][]inventory.GroupID{}
			}
			g.owners[di] = o
		}
		gs[w] = grouper{}
	}
	nd := int32(len(c.drs))
	// Per site: the drecs are consecutive.
	all := make([]int32, nd)
	for i := range all {
		all[i] = int32(i)
	}
	for si := range c.sites {
		if lo, hi := siteFirst[si], siteFirst[si+1]; hi > lo {
			c.sites[si].drs = all[lo:hi:hi]
		}
	}
	// Per dataset, in drec order (site order), as appending made them.
	cnt := g.cnt // zero again
	for i := range c.drs {
		cnt[c.drs[i].ds]++
	}
	byDS := make([]int32, nd)
	var off int32
	for ds := range c.ds {
		if n := cnt[ds]; n > 0 {
			c.ds[ds].drs = byDS[off : off : off+n]
			off += n
		}
		cnt[ds] = 0
	}
	for i := range c.drs {
		info := &c.ds[c.drs[i].ds]
		info.drs = append(info.drs, int32(i)) // within its capacity
	}
	// Full copies per dataset, likewise.
	for _, di := range g.full {
		cnt[c.drs[di].ds]++
	}
	fulls := hugePages(make([]fullRep, len(g.full)))
	off = 0
	for _, di := range g.full {
		ds := c.drs[di].ds
		if n := cnt[ds]; n > 0 {
			c.ds[ds].full = fulls[off : off : off+n]
			off += n
			cnt[ds] = 0
		}
	}
	for i, di := range g.full {
		d := &c.drs[di]
		s := &c.sites[d.site].site
		f := fullRep{site: s.ID, ready: s.Status == inventory.SiteReady, disk: s.StorageType == inventory.StorageDisk,
			owner: g.owner[i], owners: g.owners[di]}
		info := &c.ds[d.ds]
		info.full = append(info.full, f) // within its capacity
	}
	return nil
}

// grouper is groupBySite's scratch, reused from site to site, and the
// full copies it finds. cnt is indexed by dataset and zero between sites.
type grouper struct {
	cnt  []int32
	tmp  []brec
	uniq []inventory.DatasetID
	// The drecs that are full copies in the partition's view, their
	// owner, and their owners when there are several.
	full   []int32
	owner  []inventory.GroupID
	owners map[int32][]inventory.GroupID
}

// siteChunks splits the sites into at most n runs of consecutive sites
// holding about the same number of block replicas.
func siteChunks(bounds []int32, n int) [][2]int32 {
	sites := int32(len(bounds) - 1)
	total := bounds[sites]
	var out [][2]int32
	lo := int32(0)
	for k := 1; k <= n && lo < sites; k++ {
		hi := sites
		if k < n {
			goal := int32(int64(total) * int64(k) / int64(n))
			hi = lo
			for hi < sites && bounds[hi] < goal {
				hi++
			}
		}
		if hi > lo {
			out = append(out, [2]int32{lo, hi})
			lo = hi
		}
	}
	if len(out) == 0 {
		out = append(out, [2]int32{0, sites})
	}
	return out
}

// datasets returns the distinct datasets of brs (placed, not grouped yet:
// seq holds the dataset), ascending. Slot order is nearly dataset order,
// so the sort is close to linear, and it visits only the site's datasets,
// not every dataset id.
func (g *grouper) datasets(brs []brec) []inventory.DatasetID {
	var out []inventory.DatasetID
	for i := range brs {
		ds := inventory.DatasetID(brs[i].seq)
		if g.cnt[ds] == 0 {
			g.cnt[ds] = 1
			out = append(out, ds)
		}
	}
	for _, ds := range out {
		g.cnt[ds] = 0
	}
	slices.Sort(out)
	return slices.Clip(out)
}

// groupBySite counting-sorts the site's block replicas c.brs[lo:hi] by
// dataset (their seq, placeReplicas) into the drecs c.drs[first:first+len(uniq)] (uniq: the site's
// datasets, ascending, so plans come out sorted by site then dataset),
// and sorts each drec's by block. With full, it collects the site's full
// copies in the partition's view. It clears seq, which is the deletion
// order from then on.
func (c *cycle) groupBySite(si, lo, hi int32, uniq []inventory.DatasetID, first int32, g *grouper, full bool) {
	g.tmp = append(g.tmp[:0], c.brs[lo:hi]...)
	cnt := g.cnt
	for i := range g.tmp {
		cnt[g.tmp[i].seq]++
	}
	// Turn counts into start offsets and create the drecs.
	off := lo
	for k, ds := range uniq {
		n := cnt[ds]
		c.drs[first+int32(k)] = drec{ds: ds, site: si, first: off, n: n}
		cnt[ds] = off
		off += n
	}
	for i := range g.tmp {
		r := &g.tmp[i]
		ds := r.seq
		r.seq = 0
		c.brs[cnt[ds]] = *r
		cnt[ds]++
	}
	for di := first; di < first+int32(len(uniq)); di++ {
		d := &c.drs[di]
		cnt[d.ds] = 0
		brs := c.brs[d.first : d.first+d.n]
		// Block order, not the order the inventory keeps replicas in:
		// deletion order and plans must not depend on memory layout (a
		// server that loaded the inventory and one that built it by
		// replaying writes plan the same). Slot order is nearly block
		// order, so this is close to a linear pass.
		slices.SortFunc(brs, func(a, b brec) int { return cmp.Compare(a.block, b.block) })
		if full {
			c.fullInPartition(di, brs, g)
		}
	}
}

// fullInPartition records the dataset replica di in g if it is a full
// copy: every block of its dataset has a complete copy among its block
// replicas brs.
func (c *cycle) fullInPartition(di int32, brs []brec, g *grouper) {
	d := &c.drs[di]
	info := &c.ds[d.ds]
	if d.n < info.d.NumBlocks {
		return
	}
	var n int32
	var owner inventory.GroupID
	var owners []inventory.GroupID // only when there are several
	for i := range brs {
		r := &brs[i]
		if r.flags&brComplete == 0 {
			continue
		}
		switch {
		case n == 0:
			owner = r.groupID()
		case len(owners) == 0 && r.groupID() != owner:
			owners = []inventory.GroupID{owner, r.groupID()}
		case len(owners) > 0 && !containsGroup(owners, r.groupID()):
			owners = append(owners, r.groupID())
		}
		n++
	}
	if n != info.d.NumBlocks {
		return
	}
	g.full, g.owner = append(g.full, di), append(g.owner, owner)
	if owners != nil {
		if g.owners == nil {
			g.owners = map[int32][]inventory.GroupID{}
		}
		g.owners[di] = owners
	}
}

// replicaOwners sets each drec's owner, its dataset replica's group.
func (c *cycle) replicaOwners(attrs []siteAttr) {
	c.snap.ScanDatasetReplicas(func(r inventory.DatasetReplica) {
		if int(r.Site) >= len(attrs) || int(r.Dataset) >= len(c.ds) || !attrs[r.Site].target {
			return
		}
		si := attrs[r.Site].si
		for _, di := range c.ds[r.Dataset].drs {
			if c.drs[di].site == si {
				c.drs[di].owner = r.Group
				return
			}
		}
	})
}

// fullCopiesInInventory records the full copies in the inventory's view
// (CopyScopeInventory): a dataset's complete usable block replicas at one
// site, any site, in or out of the partition. It walks each site's
// replicas in turn: this scope is not the default.
func (c *cycle) fullCopiesInInventory(ctx context.Context, nb int) error {
	idx := c.snap.SiteIndex()
	cnt := make([]int32, len(c.ds))
	own := make([]inventory.GroupID, len(c.ds))
	mixed := map[inventory.DatasetID][]inventory.GroupID{}
	var touched []inventory.DatasetID
	for i := range c.sites {
		s := c.sites[i].site
		touched = touched[:0]
		clear(mixed)
		for br := range idx.BlockReplicasAtSite(s.ID) {
			if br.PendingDeletion || int(br.Block) >= nb || !br.Complete || br.Suspicious {
				continue
			}
			ds := c.blkDS[br.Block]
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
		disk, ready := s.StorageType == inventory.StorageDisk, s.Status == inventory.SiteReady
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

func containsGroup(gs []inventory.GroupID, g inventory.GroupID) bool {
	for _, x := range gs {
		if x == g {
			return true
		}
	}
	return false
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
				if ix.protects(d, c.brs[i].block, site, c.brs[i].groupID()) {
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
