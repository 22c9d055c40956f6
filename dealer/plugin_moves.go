package dealer

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/inventory"
)

// proposeBalancer moves last copies away from the sites whose quota is most
// protected (Dynamo's BalancingHandler): while the spread of protected
// fractions is at least the tolerance and the plugin's cycle volume is not
// spent, it proposes a copy of the smallest unmoved last-copy dataset of the
// most protected site. Detox later deletes the then unprotected source, so
// the net effect is a move.
func (p *planner) proposeBalancer() ([]Proposal, error) {
	c := &p.cfg.Plugins.Balancer
	prot := p.in.Protection
	if prot == nil || len(prot.Fractions) < 2 {
		return nil, nil
	}
	type siteFrac struct {
		st    *siteState
		frac  float64
		cands []inventory.Dataset
	}
	var sites []*siteFrac
	for name, f := range prot.Fractions {
		s, ok := p.snap.SiteByName(name)
		if !ok || p.site(s.ID) == nil {
			continue
		}
		sf := &siteFrac{st: p.site(s.ID), frac: f}
		for _, dn := range prot.LastCopies[name] {
			ds, ok := p.snap.DatasetByName(dn)
			if ok && (c.MaxDatasetSize == 0 || ds.Size <= int64(c.MaxDatasetSize)) && ds.Size > 0 {
				sf.cands = append(sf.cands, ds)
			}
		}
		slices.SortFunc(sf.cands, func(a, b inventory.Dataset) int {
			if c := cmp.Compare(a.Size, b.Size); c != 0 {
				return c
			}
			return cmp.Compare(a.Name, b.Name)
		})
		sites = append(sites, sf)
	}
	slices.SortFunc(sites, func(a, b *siteFrac) int { return cmp.Compare(a.st.site.ID, b.st.site.ID) })
	var out []Proposal
	var volume int64
	limit := int64(c.MaxCycleVolume)
	for len(sites) >= 2 {
		hi, lo := sites[0], sites[0]
		for _, s := range sites[1:] {
			if s.frac > hi.frac {
				hi = s
			}
			if s.frac < lo.frac {
				lo = s
			}
		}
		if hi.frac-lo.frac < c.Tolerance || (limit > 0 && volume >= limit) {
			break
		}
		if len(hi.cands) == 0 || hi.st.usage.Quota <= 0 {
			sites = slices.DeleteFunc(sites, func(s *siteFrac) bool { return s == hi })
			continue
		}
		ds := hi.cands[0]
		hi.cands = hi.cands[1:]
		out = append(out, Proposal{Dataset: ds.ID,
			Note: fmt.Sprintf("last copy at %s, protected fraction %.3f", hi.st.site.Name, hi.frac)})
		volume += ds.Size
		hi.frac -= float64(ds.Size) / float64(hi.st.usage.Quota)
	}
	return out, nil
}

// proposeUndertaker copies block replicas that exist only at sites being
// emptied (status waitroom or morgue, or additional_sites) to healthy
// sites: the whole dataset when every block is affected, else the blocks.
// Unlike Dynamo it does not require Detox protection: a sole replica on a
// dying site is worth saving whatever the policy says.
func (p *planner) proposeUndertaker() ([]Proposal, error) {
	extra, err := newSiteMatcher(p.cfg.Plugins.Undertaker.AdditionalSites)
	if err != nil {
		return nil, fmt.Errorf("%w: dealer.plugins.undertaker.additional_sites: %w", ErrConfig, err)
	}
	bad := make([]bool, len(p.sites))
	var badSites []inventory.SiteID
	for _, st := range p.sites {
		if st == nil {
			continue
		}
		s := st.site
		if s.Status == inventory.SiteWaitroom || s.Status == inventory.SiteMorgue ||
			(len(p.cfg.Plugins.Undertaker.AdditionalSites) > 0 && len(extra.include) > 0 && extra.Match(s.Name)) {
			bad[s.ID] = true
			badSites = append(badSites, s.ID)
		}
	}
	var out []Proposal
	// A block at several dying sites is proposed once, from the first.
	proposed := map[inventory.BlockID]bool{}
	for _, site := range badSites {
		sole := map[inventory.DatasetID][]inventory.BlockID{}
		owner := map[inventory.DatasetID]inventory.GroupID{}
		var order []inventory.DatasetID
		for r := range p.snap.BlockReplicasAtSite(site) {
			if r.PendingDeletion || r.Group == inventory.NoGroup {
				continue
			}
			elsewhere := false
			for o := range p.snap.BlockReplicas(r.Block) {
				if int(o.Site) < len(bad) && !bad[o.Site] && !o.PendingDeletion {
					elsewhere = true
					break
				}
			}
			if elsewhere || proposed[r.Block] {
				continue
			}
			proposed[r.Block] = true
			b, ok := p.snap.Block(r.Block)
			if !ok {
				continue
			}
			if _, seen := sole[b.Dataset]; !seen {
				order = append(order, b.Dataset)
				owner[b.Dataset] = r.Group
			}
			sole[b.Dataset] = append(sole[b.Dataset], b.ID)
		}
		slices.Sort(order)
		siteName := p.sites[site].site.Name
		for _, dsID := range order {
			ds, _ := p.snap.Dataset(dsID)
			blocks := sole[dsID]
			slices.Sort(blocks)
			pr := Proposal{Dataset: dsID, Blocks: blocks, Note: fmt.Sprintf("sole copy at %s (%s)", siteName, p.sites[site].site.Status)}
			if int32(len(blocks)) == ds.NumBlocks {
				pr.Blocks = nil
			}
			if g, ok := p.snap.Group(owner[dsID]); ok {
				pr.Group = g.Name
			}
			out = append(out, pr)
		}
	}
	return out, nil
}

// proposeGroupReassign hands replicas owned by from_groups at ready target
// sites to to_group (Dynamo's GroupReassigner), without copying data.
func (p *planner) proposeGroupReassign() ([]Proposal, error) {
	c := &p.cfg.Plugins.GroupReassign
	to := c.ToGroup
	if to == "" {
		to = p.cfg.Group
	}
	if _, ok := p.snap.GroupByName(to); !ok {
		return nil, fmt.Errorf("%w: dealer.plugins.groupreassign.to_group: %q is not a group", ErrConfig, to)
	}
	from := p.fromGroups()
	var out []Proposal
	for _, st := range p.sites {
		if st == nil || st.site.Status != inventory.SiteReady || !p.targets.Match(st.site.Name) {
			continue
		}
		var dss []inventory.DatasetID
		for dr := range p.snap.DatasetReplicasAtSite(st.site.ID) {
			if slices.Contains(from, dr.Group) {
				dss = append(dss, dr.Dataset)
			}
		}
		slices.Sort(dss)
		for _, ds := range dss {
			out = append(out, Proposal{Dataset: ds, Destination: st.site.ID, Group: to, Reassign: true,
				Note: "owned by a from_groups group"})
		}
	}
	return out, nil
}

func (p *planner) fromGroups() []inventory.GroupID {
	var from []inventory.GroupID
	for _, g := range p.cfg.Plugins.GroupReassign.FromGroups {
		if gr, ok := p.snap.GroupByName(g); ok {
			from = append(from, gr.ID)
		}
	}
	return from
}

// decideReassign decides a group-reassignment proposal: the block replicas
// at the site owned by a from-group change owner. Bytes not yet in the
// Dealer's partition join it, so they are charged like a copy.
func (p *planner) decideReassign(dec Decision, pr *Proposal, ds *inventory.Dataset) Decision {
	st := p.site(pr.Destination)
	if st == nil {
		dec.Reason, dec.Detail = ReasonUnknownItem, fmt.Sprintf("site id %d", pr.Destination)
		return dec
	}
	dec.Site = st.site.Name
	if st.site.Status != inventory.SiteReady {
		dec.Reason, dec.Detail = ReasonNotTarget, st.site.Name+": status "+st.site.Status.String()
		return dec
	}
	from := p.fromGroups()
	c := Copy{Proposal: dec.Proposal, Dataset: ds.ID, DatasetName: ds.Name, Site: st.site.ID, SiteName: st.site.Name,
		Group: p.groupOf(pr), Reassign: true}
	for b := range p.snap.Blocks(ds.ID) {
		r, ok := p.snap.BlockReplica(b.ID, st.site.ID)
		if !ok || r.PendingDeletion || !slices.Contains(from, r.Group) || p.isPlanned(b.ID, st.site.ID) {
			continue
		}
		c.Blocks = append(c.Blocks, b.ID)
		if !p.snap.InPartition(b.ID, st.site.ID, p.part) {
			c.Bytes += b.Size
		}
	}
	if len(c.Blocks) == 0 {
		dec.Reason, dec.Detail = ReasonNothingToReplace, "no block replica owned by a from-group"
		return dec
	}
	if c.Bytes > 0 {
		if ok, why := p.fits(st, c.Bytes); !ok {
			dec.Reason, dec.Detail = ReasonDestinationFull, st.site.Name+": "+why
			return dec
		}
	}
	if max := int64(p.cfg.MaxCycleVolume); max > 0 && p.cycleVol+c.Bytes > max {
		dec.Reason, dec.Detail = ReasonCycleVolume, fmt.Sprintf("%s planned, limit %s", bytesize.Format(p.cycleVol), bytesize.Format(max))
		return dec
	}
	if max := int64(p.pluginCommon(pr.Plugin).MaxCycleVolume); max > 0 && p.pluginVol[pr.Plugin]+c.Bytes > max {
		dec.Reason, dec.Detail = ReasonPluginVolume, fmt.Sprintf("plugin %s: limit %s", pr.Plugin, bytesize.Format(max))
		return dec
	}
	for _, b := range c.Blocks {
		p.planned[b] = append(p.planned[b], st.site.ID)
	}
	p.plan.Copies = append(p.plan.Copies, c)
	p.plan.Volume += c.Bytes
	p.cycleVol += c.Bytes
	p.pluginVol[pr.Plugin] += c.Bytes
	st.added += c.Bytes
	p.refresh(st)
	dec.Accepted, dec.Bytes = true, c.Bytes
	return dec
}
