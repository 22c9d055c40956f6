package dealer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/inventory"
)

// plugin is one proposal source. propose reads the planner's snapshot,
// inputs and initial site standings and must not change them.
type plugin struct {
	name    string
	common  PluginCommon
	propose func(p *planner) ([]Proposal, error)
}

func (p *planner) plugins() []plugin {
	c := &p.cfg.Plugins
	return []plugin{
		{PluginRequests, c.Requests.PluginCommon, (*planner).proposeRequests},
		{PluginEnforcer, c.Enforcer.PluginCommon, (*planner).proposeEnforcer},
		{PluginPopularity, c.Popularity.PluginCommon, (*planner).proposePopularity},
		{PluginBalancer, c.Balancer.PluginCommon, (*planner).proposeBalancer},
		{PluginUndertaker, c.Undertaker.PluginCommon, (*planner).proposeUndertaker},
		{PluginGroupReassign, c.GroupReassign.PluginCommon, (*planner).proposeGroupReassign},
	}
}

// reqState follows one copy request through the cycle.
type reqState struct {
	req       CopyRequest
	rejected  *RequestUpdate
	satisfied bool // every wanted copy exists and is complete
	present   bool // every wanted copy exists (maybe incomplete)
}

// reqItem is a request item resolved against the inventory.
type reqItem struct {
	ds     inventory.Dataset
	blocks []inventory.Block // nil: the whole dataset
}

func (it *reqItem) blockIDs() []inventory.BlockID {
	if it.blocks == nil {
		return nil
	}
	ids := make([]inventory.BlockID, len(it.blocks))
	for i, b := range it.blocks {
		ids[i] = b.ID
	}
	return ids
}

func (it *reqItem) size() int64 {
	if it.blocks == nil {
		return it.ds.Size
	}
	var n int64
	for _, b := range it.blocks {
		n += b.Size
	}
	return n
}

// proposeRequests serves the registry's copy requests (Dynamo's
// CopyRequestsHandler). New requests are validated first and rejected with
// a reason (unknown group, unknown items, no target sites, too large); block
// requests covering more than block_upgrade_fraction of their dataset are
// served as the dataset. n = 0 asks for a copy at every listed site, n > 0
// for n copies over the listed sites (existing ones count).
func (p *planner) proposeRequests() ([]Proposal, error) {
	reqs := slices.Clone(p.in.Requests)
	slices.SortFunc(reqs, func(a, b CopyRequest) int { return cmpInt64(a.ID, b.ID) })
	var out []Proposal
	for _, r := range reqs {
		if r.Status != RequestNew && r.Status != RequestActivated {
			continue
		}
		rs := &reqState{req: r}
		p.reqs[r.ID] = rs
		reject := func(reason Reason, detail string) {
			rs.rejected = &RequestUpdate{ID: r.ID, Status: RequestRejected, Reason: string(reason) + ": " + detail}
		}
		if r.Group != "" {
			if _, ok := p.snap.GroupByName(r.Group); !ok {
				reject(ReasonUnknownGroup, r.Group)
				continue
			}
		}
		items, bad := p.resolveItems(r.Items)
		if bad != "" {
			reject(ReasonUnknownItem, bad)
			continue
		}
		if len(items) == 0 {
			reject(ReasonNoItems, "the request lists no items")
			continue
		}
		var total int64
		for i := range items {
			total += items[i].size()
		}
		if max := int64(p.cfg.Plugins.Requests.MaxRequestSize); max > 0 && total > max {
			reject(ReasonRequestTooLarge, fmt.Sprintf("%s exceeds %s", bytesize.Format(total), bytesize.Format(max)))
			continue
		}
		sites := p.resolveSites(r.Sites)
		if len(sites) == 0 {
			reject(ReasonNoTargetSites, strings.Join(r.Sites, " "))
			continue
		}
		rs.satisfied, rs.present = true, true
		for i := range items {
			it := &items[i]
			base := Proposal{Dataset: it.ds.ID, Blocks: it.blockIDs(), Group: r.Group, RequestID: r.ID,
				Note: fmt.Sprintf("request %d by %s", r.ID, r.User)}
			if r.N == 0 {
				for _, s := range sites {
					full, complete := p.holds(it, s)
					rs.satisfied = rs.satisfied && complete
					rs.present = rs.present && full
					if !full {
						pr := base
						pr.Destination = s
						out = append(out, pr)
					}
				}
				continue
			}
			have, done := 0, 0
			for _, s := range sites {
				full, complete := p.holds(it, s)
				if full {
					have++
				}
				if complete {
					done++
				}
			}
			rs.satisfied = rs.satisfied && done >= r.N
			rs.present = rs.present && have >= r.N
			for k := have; k < r.N; k++ {
				pr := base
				pr.Sites = sites
				out = append(out, pr)
			}
		}
	}
	return out, nil
}

// resolveItems resolves dataset and block names, groups blocks by dataset
// and upgrades block sets above the configured fraction to the dataset.
// bad names the first unknown item.
func (p *planner) resolveItems(names []string) (items []reqItem, bad string) {
	byDS := map[inventory.DatasetID]int{}
	for _, n := range names {
		if strings.Contains(n, "#") {
			b, ok := p.snap.BlockByName(n)
			if !ok {
				return nil, n
			}
			i, seen := byDS[b.Dataset]
			if !seen {
				ds, _ := p.snap.Dataset(b.Dataset)
				items = append(items, reqItem{ds: ds, blocks: []inventory.Block{}})
				i = len(items) - 1
				byDS[b.Dataset] = i
			}
			if items[i].blocks != nil && !slices.ContainsFunc(items[i].blocks, func(x inventory.Block) bool { return x.ID == b.ID }) {
				items[i].blocks = append(items[i].blocks, b)
			}
			continue
		}
		ds, ok := p.snap.DatasetByName(n)
		if !ok {
			return nil, n
		}
		if i, seen := byDS[ds.ID]; seen {
			items[i].blocks = nil
			continue
		}
		byDS[ds.ID] = len(items)
		items = append(items, reqItem{ds: ds})
	}
	f := p.cfg.Plugins.Requests.BlockUpgradeFraction
	for i := range items {
		if items[i].blocks != nil && f > 0 && float64(items[i].size()) > f*float64(items[i].ds.Size) {
			items[i].blocks = nil
		}
	}
	return items, ""
}

// resolveSites returns the ids of the sites matching any of the names or
// patterns, sorted.
func (p *planner) resolveSites(patterns []string) []inventory.SiteID {
	var out []inventory.SiteID
	for _, pat := range patterns {
		if strings.HasPrefix(pat, "!") {
			continue
		}
		m, err := newSiteMatcher([]string{pat})
		if err != nil {
			continue
		}
		for _, st := range p.sites {
			if st != nil && m.Match(st.site.Name) {
				out = append(out, st.site.ID)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// holds reports whether every block of the item has a replica at s (full)
// and whether they are all complete.
func (p *planner) holds(it *reqItem, s inventory.SiteID) (full, complete bool) {
	// A replica pending deletion counts as there but not complete: nothing
	// can be copied onto it until Detox has removed it, and the request
	// waits (activated) rather than being re-proposed every cycle.
	check := func(b inventory.BlockID) bool {
		r, ok := p.replicaAt(b, s)
		if !ok {
			full, complete = false, false
			return false
		}
		if !r.Complete || r.PendingDeletion {
			complete = false
		}
		return true
	}
	full, complete = true, true
	if it.blocks != nil {
		for _, b := range it.blocks {
			if !check(b.ID) {
				return
			}
		}
		return
	}
	for _, b := range p.blocksOf(it.ds.ID) {
		if !check(b.ID) {
			return
		}
	}
	return
}

// requestUpdates turns the cycle's outcome into request status changes:
// rejected requests; requests whose copies all exist and are complete
// become completed; new requests with an accepted copy (or whose copies
// all exist) become activated. Others keep their status and are retried.
func (p *planner) requestUpdates() []RequestUpdate {
	accepted := map[int64]bool{}
	refused := map[int64]string{}
	for _, d := range p.plan.Decisions {
		switch {
		case d.RequestID == 0:
		case d.Accepted:
			accepted[d.RequestID] = true
		case refused[d.RequestID] == "":
			refused[d.RequestID] = strings.TrimSuffix(fmt.Sprintf("not placed: %s at %s: %s: %s", d.Item, cmp.Or(d.Site, "any listed site"), d.Reason, d.Detail), ": ")
		}
	}
	ids := make([]int64, 0, len(p.reqs))
	for id := range p.reqs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []RequestUpdate
	for _, id := range ids {
		rs := p.reqs[id]
		switch {
		case rs.rejected != nil:
			out = append(out, *rs.rejected)
		case rs.satisfied:
			out = append(out, RequestUpdate{ID: id, Status: RequestCompleted})
		case rs.req.Status == RequestNew && (accepted[id] || rs.present):
			out = append(out, RequestUpdate{ID: id, Status: RequestActivated, Reason: refused[id]})
		case refused[id] != "":
			// Refused again this cycle: the request keeps its status and
			// says why, so that its owner need not read the Dealer's history.
			out = append(out, RequestUpdate{ID: id, Status: rs.req.Status, Reason: refused[id]})
		}
	}
	return out
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
