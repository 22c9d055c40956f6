package dealer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/inventory"
)

// Plan is the outcome of one planned cycle: every proposal, in merged
// order, with its decision, the copies to make and the request status
// changes. It is self-contained (names as well as ids) so that it can be
// printed, recorded and applied later.
type Plan struct {
	Seed        uint64    `json:"seed"`
	Partition   string    `json:"partition"`
	Now         time.Time `json:"now"`
	SnapshotSeq uint64    `json:"snapshot_seq"`
	Config      Config    `json:"config"`

	Targets        []TargetSite    `json:"targets"`
	Proposals      []Proposal      `json:"proposals"`
	Decisions      []Decision      `json:"decisions"` // Decisions[i] decides Proposals[i]
	Copies         []Copy          `json:"copies"`
	RequestUpdates []RequestUpdate `json:"request_updates"`
	// Volume is the bytes of all copies.
	Volume int64 `json:"volume"`
}

// TargetSite is a site's standing at the start of the cycle.
type TargetSite struct {
	Site      string  `json:"site"`
	Quota     int64   `json:"quota"`
	Physical  int64   `json:"physical"`
	Projected int64   `json:"projected"`
	Eligible  bool    `json:"eligible"`
	Why       string  `json:"why,omitempty"` // why not eligible
	Added     int64   `json:"added"`         // bytes planned to it this cycle
	Fraction  float64 `json:"projected_fraction_after"`
}

// Decision is what became of one proposal.
type Decision struct {
	Proposal  int    `json:"proposal"`
	Plugin    string `json:"plugin"`
	Item      string `json:"item"`
	Site      string `json:"site,omitempty"` // chosen or requested destination
	Accepted  bool   `json:"accepted"`
	Reason    Reason `json:"reason,omitempty"`
	Detail    string `json:"detail,omitempty"`
	Bytes     int64  `json:"bytes"`
	RequestID int64  `json:"request_id,omitempty"`
}

// Copy is an accepted proposal: the block replicas to create at a site.
type Copy struct {
	Proposal    int                 `json:"proposal"`
	Dataset     inventory.DatasetID `json:"dataset_id"`
	DatasetName string              `json:"dataset"`
	Site        inventory.SiteID    `json:"site_id"`
	SiteName    string              `json:"site"`
	Group       string              `json:"group"`
	// Blocks are the blocks to create at the site (those missing there);
	// for a reassignment, the blocks whose owner changes.
	Blocks []inventory.BlockID `json:"block_ids"`
	// Growing: the whole dataset was asked for, so the dataset replica
	// grows with new blocks.
	Growing  bool  `json:"growing"`
	Reassign bool  `json:"reassign,omitempty"`
	Bytes    int64 `json:"bytes"`
}

// Counts returns the number of rejections per reason.
func (p *Plan) Counts() map[Reason]int {
	m := map[Reason]int{}
	for _, d := range p.Decisions {
		if !d.Accepted {
			m[d.Reason]++
		}
	}
	return m
}

// Rejections returns the rejected decisions.
func (p *Plan) Rejections() []Decision {
	var out []Decision
	for _, d := range p.Decisions {
		if !d.Accepted {
			out = append(out, d)
		}
	}
	return out
}

// siteState is a site's running standing during planning.
type siteState struct {
	site     inventory.Site
	usage    inventory.Usage
	added    int64
	eligible bool   // a target now
	why      string // why not a target
}

func (s *siteState) projected() int64 { return s.usage.Projected + s.added }

// planner holds one cycle's state. Checks that depend on it are methods;
// the order in decide is the Dealer's feasibility stack.
type planner struct {
	only  []string // plugins to run (empty: all enabled ones)
	d     *Dealer
	cfg   *Config
	snap  *inventory.Snapshot
	in    Inputs
	now   time.Time
	seed  uint64
	rng   *rand.Rand
	part  inventory.PartitionID
	sites []*siteState // by SiteID; nil for holes
	// planned block replicas this cycle, so that later proposals see them
	planned    map[inventory.BlockID][]inventory.SiteID
	cycleVol   int64
	pluginVol  map[string]int64
	requestVol map[int64]int64
	placement  []placementRule
	targets    *siteMatcher

	// scratch per proposal, indexed by SiteID
	presentN     []int32
	presentBytes []int64
	plannedN     []int32
	touched      []inventory.SiteID
	reqs         map[int64]*reqState
	blockCache   map[inventory.DatasetID][]blockInfo
	ownersDS     inventory.DatasetID // ownersAt's cache
	owners       []siteOwners
	ownersOK     bool
	plan         *Plan
}

// isPlanned reports whether a replica of b at s was planned this cycle.
func (p *planner) isPlanned(b inventory.BlockID, s inventory.SiteID) bool {
	return slices.Contains(p.planned[b], s)
}

func newPlanner(d *Dealer, snap *inventory.Snapshot, in Inputs, seed uint64, now time.Time) (*planner, error) {
	cfg := d.cfg
	part, ok := snap.PartitionByName(cfg.Partition)
	if !ok {
		return nil, fmt.Errorf("%w: dealer.partition: %q is not a partition of the inventory", ErrConfig, cfg.Partition)
	}
	placement, err := compilePlacement(cfg.Placement, now)
	if err != nil {
		return nil, err
	}
	targets, err := newSiteMatcher(cfg.TargetSites)
	if err != nil {
		return nil, fmt.Errorf("%w: dealer.target_sites: %w", ErrConfig, err)
	}
	p := &planner{
		d: d, cfg: &d.cfg, snap: snap, in: in, now: now, seed: seed,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		part:    part.ID,
		planned: map[inventory.BlockID][]inventory.SiteID{}, reqs: map[int64]*reqState{}, blockCache: map[inventory.DatasetID][]blockInfo{}, pluginVol: map[string]int64{}, requestVol: map[int64]int64{},
		placement: placement, targets: targets,
	}
	maxID := inventory.SiteID(0)
	for _, s := range snap.Sites() {
		maxID = max(maxID, s.ID)
	}
	p.sites = make([]*siteState, maxID+1)
	for _, s := range snap.Sites() {
		st := &siteState{site: s, usage: snap.Usage(s.ID, part.ID)}
		p.sites[s.ID] = st
		p.refresh(st)
	}
	p.presentN = make([]int32, maxID+1)
	p.presentBytes = make([]int64, maxID+1)
	p.plannedN = make([]int32, maxID+1)
	p.plan = &Plan{Seed: seed, Partition: cfg.Partition, Now: now.UTC(), SnapshotSeq: snap.Seq(), Config: cfg}
	return p, nil
}

// refresh recomputes whether a site is a target: ready, matched by
// target_sites, with a quota, projected occupancy below the target, pending
// volume below its fraction of the quota, and under its cycle volume.
func (p *planner) refresh(st *siteState) {
	q := st.usage.Quota
	switch {
	case st.site.Status != inventory.SiteReady:
		st.eligible, st.why = false, "status "+st.site.Status.String()
	case !p.targets.Match(st.site.Name):
		st.eligible, st.why = false, "not in target_sites"
	case q <= 0:
		st.eligible, st.why = false, "no quota"
	case float64(st.projected()) >= p.cfg.TargetOccupancy*float64(q):
		st.eligible, st.why = false, "projected occupancy at target"
	case float64(st.projected()-st.usage.Physical) >= p.cfg.MaxPendingFraction*float64(q):
		st.eligible, st.why = false, "pending volume at limit"
	case p.cfg.MaxSiteCycleVolume > 0 && st.added >= int64(p.cfg.MaxSiteCycleVolume):
		st.eligible, st.why = false, "site cycle volume reached"
	default:
		st.eligible, st.why = true, ""
	}
}

func (p *planner) site(id inventory.SiteID) *siteState {
	if id <= 0 || int(id) >= len(p.sites) {
		return nil
	}
	return p.sites[id]
}

// run collects the plugins' proposals, merges them and decides each.
func (p *planner) run() (*Plan, error) {
	lists := map[string][]Proposal{}
	prio := map[string]int{}
	for _, pl := range p.plugins() {
		if !pl.common.Enabled || len(p.only) > 0 && !slices.Contains(p.only, pl.name) {
			continue
		}
		props, err := pl.propose(p)
		if err != nil {
			return nil, fmt.Errorf("plugin %s: %w", pl.name, err)
		}
		for i := range props {
			props[i].Plugin, props[i].Priority = pl.name, pl.common.Priority
		}
		lists[pl.name] = props
		prio[pl.name] = pl.common.Priority
	}
	merged := mergeProposals(PluginNames, lists, prio)
	p.plan.Proposals = merged
	p.plan.Decisions = make([]Decision, len(merged))
	for i := range merged {
		pr := &p.plan.Proposals[i]
		pr.Item = p.itemName(pr)
		p.plan.Decisions[i] = p.decide(i, pr)
	}
	p.plan.RequestUpdates = p.requestUpdates()
	for _, st := range p.sites {
		if st == nil {
			continue
		}
		ts := TargetSite{Site: st.site.Name, Quota: st.usage.Quota, Physical: st.usage.Physical,
			Projected: st.usage.Projected, Added: st.added}
		fresh := &siteState{site: st.site, usage: st.usage}
		p.refresh(fresh)
		ts.Eligible, ts.Why = fresh.eligible, fresh.why
		if st.usage.Quota > 0 {
			ts.Fraction = float64(st.projected()) / float64(st.usage.Quota)
		}
		p.plan.Targets = append(p.plan.Targets, ts)
	}
	return p.plan, nil
}

func (p *planner) itemName(pr *Proposal) string {
	ds, _ := p.snap.Dataset(pr.Dataset)
	switch len(pr.Blocks) {
	case 0:
		return ds.Name
	case 1:
		return p.snap.BlockFullName(pr.Blocks[0])
	}
	return fmt.Sprintf("%s (%d blocks)", ds.Name, len(pr.Blocks))
}

func (p *planner) groupOf(pr *Proposal) string {
	if pr.Group != "" {
		return pr.Group
	}
	return p.cfg.Group
}

// blockInfo is what planning needs of a block; cheaper than
// inventory.Block, which carries the block's name.
type blockInfo struct {
	ID   inventory.BlockID
	Size int64
}

// blocksOf returns the blocks of a dataset, cached for the cycle (the
// enforcer and the decisions look at the same datasets repeatedly).
func (p *planner) blocksOf(ds inventory.DatasetID) []blockInfo {
	if bs, ok := p.blockCache[ds]; ok {
		return bs
	}
	var bs []blockInfo
	for b := range p.snap.Blocks(ds) {
		bs = append(bs, blockInfo{b.ID, b.Size})
	}
	p.blockCache[ds] = bs
	return bs
}

// ownersAt returns the set of groups (bit g for group id g) owning block
// replicas of ds at site, computed for all sites of the dataset in one pass
// over its block replicas and kept until another dataset is asked about.
// ok is false when a group id does not fit the mask.
func (p *planner) ownersAt(ds inventory.DatasetID, site inventory.SiteID) (mask uint64, ok bool) {
	if p.ownersDS != ds {
		p.ownersDS, p.owners, p.ownersOK = ds, p.owners[:0], true
		for b := range p.snap.Blocks(ds) {
			for r := range p.snap.BlockReplicas(b.ID) {
				if r.Group >= 64 {
					p.ownersOK = false
					continue
				}
				i := slices.IndexFunc(p.owners, func(o siteOwners) bool { return o.site == r.Site })
				if i < 0 {
					p.owners = append(p.owners, siteOwners{site: r.Site})
					i = len(p.owners) - 1
				}
				p.owners[i].mask |= 1 << r.Group
			}
		}
	}
	if !p.ownersOK {
		return 0, false
	}
	for _, o := range p.owners {
		if o.site == site {
			return o.mask, true
		}
	}
	return 0, true
}

type siteOwners struct {
	site inventory.SiteID
	mask uint64
}

// replicaAt returns the replica of block b at site, scanning the block's
// few replicas (Snapshot.BlockReplica builds the block's name first).
func (p *planner) replicaAt(b inventory.BlockID, site inventory.SiteID) (inventory.BlockReplica, bool) {
	for r := range p.snap.BlockReplicas(b) {
		if r.Site == site {
			return r, true
		}
	}
	return inventory.BlockReplica{}, false
}

// itemBlocks returns the blocks a proposal covers.
func (p *planner) itemBlocks(pr *Proposal) []blockInfo {
	all := p.blocksOf(pr.Dataset)
	if pr.Blocks == nil {
		return all
	}
	out := make([]blockInfo, 0, len(pr.Blocks))
	for _, id := range pr.Blocks {
		for _, b := range all {
			if b.ID == id {
				out = append(out, b)
				break
			}
		}
	}
	return out
}

// decide runs the feasibility stack on one proposal. The order matters:
// facts about the item itself (exists, valid, has a source) come first
// because they reject the proposal whatever the destination; then the
// destination (named or chosen), because the volume a copy costs depends
// on what the destination already holds; the volume limits come last.
func (p *planner) decide(i int, pr *Proposal) Decision {
	dec := Decision{Proposal: i, Plugin: pr.Plugin, Item: pr.Item, RequestID: pr.RequestID}
	reject := func(r Reason, detail string, args ...any) Decision {
		dec.Reason, dec.Detail = r, fmt.Sprintf(detail, args...)
		return dec
	}
	ds, ok := p.snap.Dataset(pr.Dataset)
	if !ok {
		return reject(ReasonUnknownItem, "dataset id %d", pr.Dataset)
	}
	if pr.Reassign {
		return p.decideReassign(dec, pr, &ds)
	}
	if ds.Status != inventory.DatasetValid && ds.Status != inventory.DatasetProduction {
		return reject(ReasonDatasetStatus, "dataset is %s", ds.Status)
	}
	blocks := p.itemBlocks(pr)
	if pr.Blocks == nil && len(blocks) == 0 {
		return reject(ReasonUnknownItem, "%s has no blocks", ds.Name)
	}
	if len(blocks) == 0 || len(blocks) != len(pr.Blocks) && pr.Blocks != nil {
		return reject(ReasonUnknownItem, "some blocks are not in %s", ds.Name)
	}
	var total int64
	minBlock := blocks[0].Size
	for _, b := range blocks {
		total += b.Size
		minBlock = min(minBlock, b.Size)
	}
	// Shortcut: a chosen destination lacks at least one block, so when even
	// the smallest block would cross the cycle volume the proposal is over
	// it whatever the destination; once the volume is spent, this saves the
	// replica scan for every remaining proposal.
	if max := int64(p.cfg.MaxCycleVolume); max > 0 && pr.Destination == 0 && p.cycleVol+minBlock > max {
		return reject(ReasonCycleVolume, "%s planned, even %s more exceeds %s", bytesize.Format(p.cycleVol), bytesize.Format(minBlock), bytesize.Format(max))
	}
	// One pass over the item's replicas: sources, and per site how many
	// blocks (and bytes) are already there or planned.
	for _, s := range p.touched {
		p.presentN[s], p.presentBytes[s], p.plannedN[s] = 0, 0, 0
	}
	p.touched = p.touched[:0]
	touch := func(s inventory.SiteID) {
		if p.presentN[s] == 0 && p.plannedN[s] == 0 {
			p.touched = append(p.touched, s)
		}
	}
	for _, b := range blocks {
		sourced := false
		for r := range p.snap.BlockReplicas(b.ID) {
			if int(r.Site) >= len(p.sites) {
				continue
			}
			touch(r.Site)
			p.presentN[r.Site]++
			p.presentBytes[r.Site] += b.Size
			if !sourced && r.Complete && !r.PendingDeletion && (pr.Sources == nil || slices.Contains(pr.Sources, r.Site)) {
				sourced = true
			}
		}
		if !sourced {
			if pr.Sources != nil {
				return reject(ReasonNoSource, "no complete replica of %s at an allowed source", p.snap.BlockFullName(b.ID))
			}
			return reject(ReasonNoSource, "no complete replica of %s", p.snap.BlockFullName(b.ID))
		}
	}
	for _, b := range blocks {
		for _, s := range p.planned[b.ID] {
			touch(s)
			p.plannedN[s]++
			p.presentBytes[s] += b.Size
		}
	}
	n := int32(len(blocks))
	group := p.groupOf(pr)
	var dest *siteState
	if pr.Destination != 0 {
		dest = p.site(pr.Destination)
		if dest == nil {
			return reject(ReasonUnknownItem, "destination site id %d", pr.Destination)
		}
		dec.Site = dest.site.Name
		if r, why := p.checkDestination(dest, &ds, group, n, total); r != "" {
			return reject(r, "%s", why)
		}
	} else {
		var why string
		dest, why = p.chooseDestination(pr, &ds, group, n, total)
		if dest == nil {
			return reject(ReasonNoDestination, "no eligible site can take %s (%s)", bytesize.Format(total), why)
		}
		dec.Site = dest.site.Name
	}
	cost := total - p.presentBytes[dest.site.ID]
	if max := int64(p.cfg.MaxCycleVolume); max > 0 && p.cycleVol+cost > max {
		return reject(ReasonCycleVolume, "%s planned, %s more exceeds %s", bytesize.Format(p.cycleVol), bytesize.Format(cost), bytesize.Format(max))
	}
	if max := int64(p.pluginCommon(pr.Plugin).MaxCycleVolume); max > 0 && p.pluginVol[pr.Plugin]+cost > max {
		return reject(ReasonPluginVolume, "plugin %s: %s planned, limit %s", pr.Plugin, bytesize.Format(p.pluginVol[pr.Plugin]), bytesize.Format(max))
	}
	if max := int64(p.cfg.MaxRequestVolume); max > 0 && pr.RequestID != 0 && p.requestVol[pr.RequestID]+cost > max {
		return reject(ReasonRequestVolume, "request %d: %s planned, limit %s", pr.RequestID, bytesize.Format(p.requestVol[pr.RequestID]), bytesize.Format(max))
	}
	// Accepted: create the missing blocks.
	c := Copy{Proposal: i, Dataset: ds.ID, DatasetName: ds.Name, Site: dest.site.ID, SiteName: dest.site.Name,
		Group: group, Growing: pr.Blocks == nil, Bytes: cost}
	for _, b := range blocks {
		if _, ok := p.replicaAt(b.ID, dest.site.ID); ok || p.isPlanned(b.ID, dest.site.ID) {
			continue
		}
		p.planned[b.ID] = append(p.planned[b.ID], dest.site.ID)
		c.Blocks = append(c.Blocks, b.ID)
	}
	p.plan.Copies = append(p.plan.Copies, c)
	p.plan.Volume += cost
	p.cycleVol += cost
	p.pluginVol[pr.Plugin] += cost
	if pr.RequestID != 0 {
		p.requestVol[pr.RequestID] += cost
	}
	dest.added += cost
	p.refresh(dest)
	dec.Accepted, dec.Bytes = true, cost
	return dec
}

// checkDestination checks a named destination: a target, not already
// holding the item, allowed by placement, and with room.
func (p *planner) checkDestination(st *siteState, ds *inventory.Dataset, group string, n int32, total int64) (Reason, string) {
	id := st.site.ID
	if p.presentN[id]+p.plannedN[id] >= n {
		if p.plannedN[id] > 0 {
			return ReasonDuplicate, "already planned to " + st.site.Name + " this cycle"
		}
		return ReasonReplicaExists, "already at " + st.site.Name
	}
	if !st.eligible {
		return ReasonNotTarget, st.site.Name + ": " + st.why
	}
	if !p.placementAllows(st, ds, group) {
		return ReasonPlacement, st.site.Name + " not allowed by placement rules"
	}
	if ok, why := p.fits(st, total-p.presentBytes[id]); !ok {
		return ReasonDestinationFull, st.site.Name + ": " + why
	}
	return "", ""
}

// fits reports whether cost more bytes keep the site within its quota and
// its cycle volume: the hard limits (eligibility thresholds are soft: a
// target below them may take one copy that crosses them).
func (p *planner) fits(st *siteState, cost int64) (bool, string) {
	if st.projected()+cost > st.usage.Quota {
		return false, fmt.Sprintf("%s projected + %s exceeds quota %s", bytesize.Format(st.projected()), bytesize.Format(cost), bytesize.Format(st.usage.Quota))
	}
	if max := int64(p.cfg.MaxSiteCycleVolume); max > 0 && st.added+cost > max {
		return false, fmt.Sprintf("site cycle volume %s + %s exceeds %s", bytesize.Format(st.added), bytesize.Format(cost), bytesize.Format(max))
	}
	return true, ""
}

func (p *planner) placementAllows(st *siteState, ds *inventory.Dataset, group string) bool {
	if len(p.placement) == 0 {
		return true
	}
	rv := &replicaView{snap: p.snap, ds: ds, site: &st.site, hypothetical: true, owner: group}
	sv := &siteView{site: &st.site, usage: st.usage}
	for _, r := range p.placement {
		if r.replicas.Match(rv) && !r.sites.Match(sv) {
			return false
		}
	}
	return true
}

// chooseDestination draws a site among the eligible ones that lack part of
// the item, pass placement and have room, weighted by the free quota left
// after the copy. Candidates are visited in site-id order so that the draw
// depends only on the seed.
// When no site qualifies, why counts the sites by what excluded them.
func (p *planner) chooseDestination(pr *Proposal, ds *inventory.Dataset, group string, n int32, total int64) (*siteState, string) {
	var cands []*siteState
	var weights []float64
	sum := 0.0
	var notTarget, has, full, placed int
	consider := func(st *siteState) {
		if st == nil {
			return
		}
		if !st.eligible {
			notTarget++
			return
		}
		id := st.site.ID
		if p.presentN[id]+p.plannedN[id] >= n {
			has++
			return
		}
		cost := total - p.presentBytes[id]
		if ok, _ := p.fits(st, cost); !ok {
			full++
			return
		}
		if !p.placementAllows(st, ds, group) {
			placed++
			return
		}
		w := float64(st.usage.Quota - st.projected() - cost)
		if w <= 0 {
			w = 1 // exactly full after the copy: still allowed, least likely
		}
		cands = append(cands, st)
		weights = append(weights, w)
		sum += w
	}
	if pr.Sites != nil {
		ids := slices.Clone(pr.Sites)
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			consider(p.site(id))
		}
	} else {
		for _, st := range p.sites {
			consider(st)
		}
	}
	if len(cands) == 0 {
		return nil, fmt.Sprintf("%d sites not targets, %d hold it, %d full, %d refused by placement", notTarget, has, full, placed)
	}
	x := p.rng.Float64() * sum
	for i, w := range weights {
		if x < w {
			return cands[i], ""
		}
		x -= w
	}
	return cands[len(cands)-1], ""
}

func (p *planner) pluginCommon(name string) PluginCommon {
	for _, pc := range p.cfg.Plugins.all() {
		if pc.name == name {
			return *pc.c
		}
	}
	return PluginCommon{}
}
