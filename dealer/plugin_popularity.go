package dealer

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dynamo-go/dynamo/inventory"
)

// requestWeights sums each dataset's accesses, each decayed by
// 0.5^(age/halfLife) (Dynamo's Σ exp(−Δt/τ) with τ = halfLife/ln 2).
// Accesses dated after now weigh as if made now.
func requestWeights(acc []DatasetAccess, now time.Time, halfLife time.Duration) map[string]float64 {
	w := map[string]float64{}
	hl := halfLife.Seconds()
	for _, a := range acc {
		age := max(float64(now.Unix()-a.Time), 0)
		w[a.Dataset] += float64(a.Count) * math.Exp2(-age/hl)
	}
	return w
}

// proposePopularity asks for more copies of much-accessed datasets:
// wanted = min(max_replication, ceil(weight/threshold)) − existing disk
// replicas. Proposals go out round-robin, heaviest dataset first (first
// every dataset's first extra copy, then the second ...), so that a few
// hot datasets cannot take the whole cycle.
func (p *planner) proposePopularity() ([]Proposal, error) {
	c := &p.cfg.Plugins.Popularity
	if len(p.in.Accesses) == 0 {
		return nil, nil
	}
	weights := requestWeights(p.in.Accesses, p.now, c.HalfLife)
	var srcGroups []inventory.GroupID
	for _, g := range c.SourceGroups {
		if gr, ok := p.snap.GroupByName(g); ok {
			srcGroups = append(srcGroups, gr.ID)
		}
	}
	type want struct {
		ds     inventory.DatasetID
		name   string
		weight float64
		n      int
	}
	var wants []want
	for name, w := range weights {
		ds, ok := p.snap.DatasetByName(name)
		if !ok || (c.MaxDatasetSize > 0 && ds.Size > int64(c.MaxDatasetSize)) {
			continue
		}
		existing, owned := 0, len(c.SourceGroups) == 0
		for dr := range p.snap.DatasetReplicas(ds.ID) {
			if st := p.site(dr.Site); st != nil && st.site.StorageType == inventory.StorageDisk {
				existing++
			}
			if slices.Contains(srcGroups, dr.Group) {
				owned = true
			}
		}
		if !owned {
			continue
		}
		n := min(c.MaxReplication, int(math.Ceil(w/c.Threshold))) - existing
		if n > 0 {
			wants = append(wants, want{ds.ID, name, w, n})
		}
	}
	slices.SortFunc(wants, func(a, b want) int {
		if c := cmp.Compare(b.weight, a.weight); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	var out []Proposal
	for round := 1; ; round++ {
		added := false
		for _, w := range wants {
			if w.n >= round {
				out = append(out, Proposal{Dataset: w.ds, Note: fmt.Sprintf("request weight %.2f, extra copy %d of %d", w.weight, round, w.n)})
				added = true
			}
		}
		if !added {
			return out, nil
		}
	}
}
