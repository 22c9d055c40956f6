package detox

import (
	"cmp"
	"errors"
	"slices"

	"github.com/dynamo-go/dynamo/inventory"
)

// DiffSide is one plan's decision for a changed set of block replicas.
type DiffSide struct {
	Decision Decision
	Line     int    // policy line, 0 = default
	Rule     string // the line's text
	Reason   Reason
}

// ReplicaChange is a set of block replicas of one dataset at one site
// whose decision, reason or deciding rule differs between two plans, with the decision on each side.
// A side with a zero Decision did not decide them (not in its partition
// or not at one of its target sites).
type ReplicaChange struct {
	Site    string
	Dataset string
	Blocks  []inventory.BlockID // nil: every block of the replica either side decided
	Size    int64
	A, B    DiffSide
}

// SiteDiff is the changes at one site and the bytes that move: Freed is
// what B deletes and A does not, Kept what A deletes and B does not.
type SiteDiff struct {
	Site    string
	Changes []ReplicaChange
	Freed   int64
	Kept    int64
}

// ErrDiffSnapshots: two plans made on different snapshots cannot be
// compared replica by replica.
var ErrDiffSnapshots = errors.New("plans were made on different inventory snapshots")

// DiffPlans compares two plans made on the same snapshot (two policies,
// two versions of one, or one under both copy-count scopes), block replica
// by block replica. Sites come sorted by name, changes by dataset name.
func DiffPlans(a, b *Plan) ([]SiteDiff, error) {
	if a.snap != b.snap {
		return nil, ErrDiffSnapshots
	}
	snap := a.snap
	type key struct {
		block inventory.BlockID
		site  inventory.SiteID
	}
	index := func(p *Plan) map[key]ReplicaDecision {
		out := map[key]ReplicaDecision{}
		for _, r := range p.Replicas {
			blocks := r.Blocks
			if blocks == nil {
				for blk := range snap.Blocks(r.Dataset) {
					if snap.InPartition(blk.ID, r.Site, p.PartitionID) {
						blocks = append(blocks, blk.ID)
					}
				}
			}
			for _, blk := range blocks {
				out[key{blk, r.Site}] = r
			}
		}
		return out
	}
	ia, ib := index(a), index(b)
	side := func(p *Plan, r ReplicaDecision, ok bool) DiffSide {
		if !ok {
			return DiffSide{}
		}
		return DiffSide{Decision: r.Decision, Line: r.Line, Rule: p.LineText(r.Line), Reason: r.Reason}
	}
	type group struct {
		ds   inventory.DatasetID
		site inventory.SiteID
		a, b DiffSide
	}
	changes := map[group]*ReplicaChange{}
	var order []group
	visit := func(k key) {
		ra, oka := ia[k]
		rb, okb := ib[k]
		// Lines are compared by text: two policy files number them
		// differently, and the same decision by another rule is worth
		// reviewing.
		if oka && okb && ra.Decision == rb.Decision && ra.Reason == rb.Reason && a.LineText(ra.Line) == b.LineText(rb.Line) {
			return
		}
		if !oka && !okb {
			return
		}
		ds := ra.Dataset
		if !oka {
			ds = rb.Dataset
		}
		g := group{ds, k.site, side(a, ra, oka), side(b, rb, okb)}
		c := changes[g]
		if c == nil {
			site, _ := snap.Site(k.site)
			d, _ := snap.Dataset(ds)
			c = &ReplicaChange{Site: site.Name, Dataset: d.Name, A: g.a, B: g.b}
			changes[g] = c
			order = append(order, g)
		}
		c.Blocks = append(c.Blocks, k.block)
		if br, ok := snap.BlockReplica(k.block, k.site); ok {
			c.Size += br.Size
		}
	}
	for k := range ia {
		visit(k)
	}
	for k := range ib {
		if _, seen := ia[k]; !seen {
			visit(k)
		}
	}
	bySite := map[string]*SiteDiff{}
	for _, g := range order {
		c := changes[g]
		slices.Sort(c.Blocks)
		if n := countBlocks(snap, g.ds); n == len(c.Blocks) {
			c.Blocks = nil
		}
		sd := bySite[c.Site]
		if sd == nil {
			sd = &SiteDiff{Site: c.Site}
			bySite[c.Site] = sd
		}
		sd.Changes = append(sd.Changes, *c)
		switch {
		case c.B.Decision == DecisionDelete && c.A.Decision != DecisionDelete:
			sd.Freed += c.Size
		case c.A.Decision == DecisionDelete && c.B.Decision != DecisionDelete:
			sd.Kept += c.Size
		}
	}
	out := make([]SiteDiff, 0, len(bySite))
	for _, sd := range bySite {
		slices.SortFunc(sd.Changes, func(x, y ReplicaChange) int {
			if r := cmp.Compare(x.Dataset, y.Dataset); r != 0 {
				return r
			}
			if r := cmp.Compare(x.A.Line, y.A.Line); r != 0 {
				return r
			}
			if r := cmp.Compare(x.B.Line, y.B.Line); r != 0 {
				return r
			}
			return cmp.Compare(string(x.A.Reason)+"\x00"+string(x.B.Reason), string(y.A.Reason)+"\x00"+string(y.B.Reason))
		})
		out = append(out, *sd)
	}
	slices.SortFunc(out, func(x, y SiteDiff) int { return cmp.Compare(x.Site, y.Site) })
	return out, nil
}

func countBlocks(snap *inventory.Snapshot, ds inventory.DatasetID) int {
	n := 0
	for range snap.Blocks(ds) {
		n++
	}
	return n
}
