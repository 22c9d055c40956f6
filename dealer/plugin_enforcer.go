package dealer

import (
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// enforcerRule is a compiled policy.EnforcerRule.
type enforcerRule struct {
	name      string
	file      string
	group     string
	numCopies int
	protect   bool
	replicas  anyOf[*replicaView]
	dests     anyOf[*siteView]
	sources   anyOf[*siteView] // nil: any site
}

func compileEnforcer(sets []*policy.EnforcerRules, now time.Time) ([]enforcerRule, error) {
	var out []enforcerRule
	rb, sb := replicaBindings(), siteBindings()
	for _, set := range sets {
		for _, r := range set.Rules {
			er := enforcerRule{name: r.Name, file: set.File, group: set.DefaultDestinationGroup, numCopies: r.NumCopies, protect: r.Protect}
			var err error
			if er.replicas, err = compileAll(r.Replicas, rb, now); err != nil {
				return nil, fmt.Errorf("%w: %s: rule %s: %w", ErrConfig, set.File, r.Name, err)
			}
			if er.dests, err = compileAll(r.Destinations, sb, now); err != nil {
				return nil, fmt.Errorf("%w: %s: rule %s: %w", ErrConfig, set.File, r.Name, err)
			}
			if len(r.Sources) > 0 {
				if er.sources, err = compileAll(r.Sources, sb, now); err != nil {
					return nil, fmt.Errorf("%w: %s: rule %s: %w", ErrConfig, set.File, r.Name, err)
				}
			}
			out = append(out, er)
		}
	}
	return out, nil
}

// matchSites returns the ids of the sites a site condition list matches.
func (p *planner) matchSites(m anyOf[*siteView]) []inventory.SiteID {
	out := []inventory.SiteID{}
	for _, st := range p.sites {
		if st != nil && m.Match(&siteView{site: &st.site, usage: st.usage}) {
			out = append(out, st.site.ID)
		}
	}
	return out
}

// proposeEnforcer keeps num_copies full replicas owned by the rule's group
// at destination sites for every dataset with a replica matching the rule
// (Dynamo's EnforcerHandler). Replicas still in transfer count, so a rule
// is not re-proposed while its copies complete. Dynamo's preference for
// flipping the owner of an existing replica is not implemented: group
// reassignment does that explicitly.
func (p *planner) proposeEnforcer() ([]Proposal, error) {
	rules, err := compileEnforcer(p.d.enforcer, p.now)
	if err != nil {
		return nil, err
	}
	type ruleSites struct {
		dests   []inventory.SiteID
		isDest  []bool
		sources []inventory.SiteID
		group   inventory.GroupID
		gok     bool
	}
	rs := make([]ruleSites, len(rules))
	for i, r := range rules {
		rs[i].dests = p.matchSites(r.dests)
		rs[i].isDest = make([]bool, len(p.sites))
		for _, s := range rs[i].dests {
			rs[i].isDest[s] = true
		}
		if r.sources != nil {
			rs[i].sources = p.matchSites(r.sources)
		}
		g, ok := p.snap.GroupByName(r.group)
		rs[i].group, rs[i].gok = g.ID, ok
	}
	// Dataset-major, so that a dataset's blocks are looked up once for all
	// rules; proposals come out in dataset order, rules in file order.
	var out []Proposal
	for ds := range p.snap.Datasets() {
		for i, r := range rules {
			if !p.datasetMatches(&ds, r.replicas) {
				continue
			}
			have := 0
			if rs[i].gok {
				for dr := range p.snap.DatasetReplicas(ds.ID) {
					if int(dr.Site) < len(rs[i].isDest) && rs[i].isDest[dr.Site] && p.fullOwnedBy(&ds, dr.Site, rs[i].group) {
						have++
					}
				}
			}
			for k := have; k < r.numCopies; k++ {
				out = append(out, Proposal{Dataset: ds.ID, Sites: rs[i].dests, Sources: rs[i].sources, Group: r.group,
					Note: fmt.Sprintf("enforcer rule %s (%d of %d copies)", r.name, k+1, r.numCopies)})
			}
		}
		// Keep the cache to the datasets that will be decided.
		if len(out) == 0 || out[len(out)-1].Dataset != ds.ID {
			delete(p.blockCache, ds.ID)
		}
	}
	return out, nil
}

// datasetMatches reports whether some replica of the dataset matches.
func (p *planner) datasetMatches(ds *inventory.Dataset, m anyOf[*replicaView]) bool {
	for dr := range p.snap.DatasetReplicas(ds.ID) {
		st := p.site(dr.Site)
		if st == nil {
			continue
		}
		if m.Match(&replicaView{snap: p.snap, ds: ds, site: &st.site, pl: p}) {
			return true
		}
	}
	return false
}

// fullOwnedBy reports whether every block of ds has a replica at site owned
// by g (complete or in transfer).
func (p *planner) fullOwnedBy(ds *inventory.Dataset, site inventory.SiteID, g inventory.GroupID) bool {
	for _, b := range p.blocksOf(ds.ID) {
		r, ok := p.replicaAt(b.ID, site)
		if !ok || r.Group != g || r.PendingDeletion {
			return false
		}
	}
	return true
}

// ProtectedReplica is a dataset replica an enforcer rule with protect: true
// covers: Detox must not delete it (replica.enforcer_protected).
type ProtectedReplica struct {
	Dataset inventory.DatasetID
	Site    inventory.SiteID
}

// EnforcerProtected returns the replicas protected by enforcer rules with
// protect: true (a replica matching the rule at one of its destination
// sites), with the protecting rule's name. Detox reads it through the
// enforcer attribute producer.
func (d *Dealer) EnforcerProtected(snap *inventory.Snapshot, now time.Time) (map[ProtectedReplica]string, error) {
	rules, err := compileEnforcer(d.enforcer, now)
	if err != nil {
		return nil, err
	}
	out := map[ProtectedReplica]string{}
	part, _ := snap.PartitionByName(d.cfg.Partition)
	for _, r := range rules {
		if !r.protect {
			continue
		}
		isDest := map[inventory.SiteID]*inventory.Site{}
		for _, s := range snap.Sites() {
			s := s
			if r.dests.Match(&siteView{site: &s, usage: snap.Usage(s.ID, part.ID)}) {
				isDest[s.ID] = &s
			}
		}
		for ds := range snap.Datasets() {
			for dr := range snap.DatasetReplicas(ds.ID) {
				site := isDest[dr.Site]
				if site == nil {
					continue
				}
				k := ProtectedReplica{ds.ID, dr.Site}
				if _, done := out[k]; !done && r.replicas.Match(&replicaView{snap: snap, ds: &ds, site: site}) {
					out[k] = r.name
				}
			}
		}
	}
	return out, nil
}
