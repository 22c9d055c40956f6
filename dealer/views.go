package dealer

import (
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// replicaView is the subject of replica conditions (enforcer `replicas`,
// placement rules): a dataset at a site, either an existing dataset replica
// or the replica a copy would create (then owner is the copy's group).
type replicaView struct {
	snap         *inventory.Snapshot
	ds           *inventory.Dataset
	site         *inventory.Site
	hypothetical bool
	owner        string   // the would-be owner of a hypothetical replica
	pl           *planner // when set, its block cache serves block lookups
}

// siteView is the subject of site conditions (enforcer destinations and
// sources, placement rules).
type siteView struct {
	site  *inventory.Site
	usage inventory.Usage
}

var (
	siteStatusCodes = map[string]int{"READY": int(inventory.SiteReady), "WAITROOM": int(inventory.SiteWaitroom),
		"MORGUE": int(inventory.SiteMorgue), "UNKNOWN": int(inventory.SiteUnknown)}
	storageTypeCodes = map[string]int{"DISK": int(inventory.StorageDisk), "MSS": int(inventory.StorageMSS),
		"BUFFER": int(inventory.StorageBuffer), "UNKNOWN": int(inventory.StorageUnknown)}
	datasetStatusCodes = map[string]int{"UNKNOWN": int(inventory.DatasetUnknown), "DELETED": int(inventory.DatasetDeleted),
		"DEPRECATED": int(inventory.DatasetDeprecated), "INVALID": int(inventory.DatasetInvalid),
		"PRODUCTION": int(inventory.DatasetProduction), "VALID": int(inventory.DatasetValid), "IGNORED": int(inventory.DatasetIgnored)}
)

// replicaBindings binds the replica-context variables the Dealer can
// evaluate from the inventory alone. Conditions using others (attribute
// producers such as accesses or locks) fail to load with ErrUnbound.
func replicaBindings() *policy.Bindings[*replicaView] {
	return policy.NewBindings[*replicaView]().
		String("dataset.name", func(r *replicaView) string { return r.ds.Name }).
		Enum("dataset.status", func(r *replicaView) int { return int(r.ds.Status) }, datasetStatusCodes).
		Bytes("dataset.size", func(r *replicaView) int64 { return r.ds.Size }).
		Time("dataset.last_update", func(r *replicaView) int64 { return r.ds.LastUpdate }).
		String("dataset.release", func(r *replicaView) string { return r.ds.SoftwareVersion }).
		String("site.name", func(r *replicaView) string { return r.site.Name }).
		Enum("site.status", func(r *replicaView) int { return int(r.site.Status) }, siteStatusCodes).
		Enum("site.storage_type", func(r *replicaView) int { return int(r.site.StorageType) }, storageTypeCodes).
		AnyString("blockreplica.owner", func(r *replicaView, yield func(string) bool) bool {
			if r.hypothetical {
				return yield(ownerName(r.owner))
			}
			if r.pl != nil {
				if mask, ok := r.pl.ownersAt(r.ds.ID, r.site.ID); ok {
					for g := inventory.GroupID(0); mask != 0; g, mask = g+1, mask>>1 {
						if mask&1 != 0 {
							gr, _ := r.snap.Group(g)
							if yield(ownerName(gr.Name)) {
								return true
							}
						}
					}
					return false
				}
			}
			for b := range r.snap.Blocks(r.ds.ID) {
				if br, ok := r.snap.BlockReplica(b.ID, r.site.ID); ok {
					g, _ := r.snap.Group(br.Group)
					if yield(ownerName(g.Name)) {
						return true
					}
				}
			}
			return false
		})
}

// ownerName maps the null group to the policy language's None.
func ownerName(g string) string {
	if g == "" {
		return "None"
	}
	return g
}

func siteBindings() *policy.Bindings[*siteView] {
	return policy.NewBindings[*siteView]().
		String("site.name", func(s *siteView) string { return s.site.Name }).
		Enum("site.status", func(s *siteView) int { return int(s.site.Status) }, siteStatusCodes).
		Enum("site.storage_type", func(s *siteView) int { return int(s.site.StorageType) }, storageTypeCodes).
		Number("site.occupancy", func(s *siteView) float64 { f, _ := s.usage.Fraction(); return f }).
		Bytes("site.quota", func(s *siteView) int64 { return s.usage.Quota })
}

// anyOf is a list of matchers ORed together (enforcer lists).
type anyOf[S any] []*policy.Matcher[S]

func (a anyOf[S]) Match(s S) bool {
	for _, m := range a {
		if m.Match(s) {
			return true
		}
	}
	return false
}

func compileAll[S any](conds []*policy.Condition, b *policy.Bindings[S], now time.Time) (anyOf[S], error) {
	out := make(anyOf[S], 0, len(conds))
	for _, c := range conds {
		m, err := policy.Compile(c, b, now)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// placementRule is a compiled PlacementRuleConfig.
type placementRule struct {
	replicas *policy.Matcher[*replicaView]
	sites    *policy.Matcher[*siteView]
}

func compilePlacement(rules []PlacementRuleConfig, now time.Time) ([]placementRule, error) {
	var out []placementRule
	for i, r := range rules {
		rc, err := policy.ParseCondition(r.Replicas, policy.ContextReplica)
		if err != nil {
			return nil, fmt.Errorf("%w: dealer.placement[%d].replicas: %w", ErrConfig, i, err)
		}
		sc, err := policy.ParseCondition(r.Sites, policy.ContextSite)
		if err != nil {
			return nil, fmt.Errorf("%w: dealer.placement[%d].sites: %w", ErrConfig, i, err)
		}
		rm, err := policy.Compile(rc, replicaBindings(), now)
		if err != nil {
			return nil, fmt.Errorf("%w: dealer.placement[%d].replicas: %w", ErrConfig, i, err)
		}
		sm, err := policy.Compile(sc, siteBindings(), now)
		if err != nil {
			return nil, fmt.Errorf("%w: dealer.placement[%d].sites: %w", ErrConfig, i, err)
		}
		out = append(out, placementRule{rm, sm})
	}
	return out, nil
}

// siteMatcher matches site names against include/exclude glob patterns
// (`!pattern` excludes; no include pattern means every site).
type siteMatcher struct {
	include, exclude []*glob.Pattern
}

func newSiteMatcher(patterns []string) (*siteMatcher, error) {
	m := &siteMatcher{}
	for _, p := range patterns {
		neg := len(p) > 0 && p[0] == '!'
		if neg {
			p = p[1:]
		}
		g, err := glob.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("site pattern %q: %w", p, err)
		}
		if neg {
			m.exclude = append(m.exclude, g)
		} else {
			m.include = append(m.include, g)
		}
	}
	return m, nil
}

func (m *siteMatcher) Match(name string) bool {
	for _, g := range m.exclude {
		if g.Match(name) {
			return false
		}
	}
	if len(m.include) == 0 {
		return true
	}
	for _, g := range m.include {
		if g.Match(name) {
			return true
		}
	}
	return false
}
