package detox

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/inventory"
)

// Lock protects block replicas from deletion until it expires: those of
// one dataset (or of every dataset whose name matches a glob), or of one
// block of it, at the listed sites, owned by the listed groups. An empty
// list means every site, or every group.
//
// This is the one evaluation of the registry's detox locks: planning flags
// locked replicas with it, and applying checks them again with it against
// the current state.
type Lock struct {
	ID      int64    // the registry's lock id, for errors; 0 when it has none
	Dataset string   // a dataset name, or a glob of names (internal/glob rules)
	Block   string   // the part after '#', "" for the whole dataset
	Sites   []string // "" or empty: every site
	Groups  []string // owners of the block replica; empty: any owner
	Expires time.Time
}

// lockScope is one lock resolved against a snapshot. A nil list covers
// everything; a list whose names all are unknown covers nothing (empty,
// non-nil), so a lock naming a site or group that does not exist protects
// nothing rather than everything.
type lockScope struct {
	sites  []inventory.SiteID
	groups []inventory.GroupID
}

func (s lockScope) covers(site inventory.SiteID, group inventory.GroupID) bool {
	return (s.sites == nil || slices.Contains(s.sites, site)) && (s.groups == nil || slices.Contains(s.groups, group))
}

// lockIndex is the active locks resolved against one snapshot.
type lockIndex struct {
	datasets map[inventory.DatasetID][]lockScope
	blocks   map[inventory.BlockID][]lockScope
}

// newLockIndex resolves the locks active at at. A glob that does not
// compile is an error naming the lock, never a lock silently ignored.
func newLockIndex(snap *inventory.Snapshot, locks []Lock, at time.Time) (lockIndex, error) {
	ix := lockIndex{datasets: map[inventory.DatasetID][]lockScope{}, blocks: map[inventory.BlockID][]lockScope{}}
	for _, l := range locks {
		if !l.Expires.IsZero() && !l.Expires.After(at) {
			continue // expired: the source should not have returned it
		}
		sc := lockScope{}
		if l.Sites = slices.DeleteFunc(slices.Clone(l.Sites), func(s string) bool { return s == "" }); len(l.Sites) > 0 {
			sc.sites = []inventory.SiteID{}
			for _, n := range l.Sites {
				if s, ok := snap.SiteByName(n); ok {
					sc.sites = append(sc.sites, s.ID)
				}
			}
		}
		if len(l.Groups) > 0 {
			sc.groups = []inventory.GroupID{}
			for _, n := range l.Groups {
				if g, ok := snap.GroupByName(n); ok {
					sc.groups = append(sc.groups, g.ID)
				}
			}
		}
		var datasets []inventory.DatasetID
		if strings.ContainsAny(l.Dataset, "*?[") {
			pat, err := glob.Compile(l.Dataset)
			if err != nil {
				return lockIndex{}, fmt.Errorf("detox lock %d: %w", l.ID, err)
			}
			for d := range snap.Datasets() {
				if pat.Match(d.Name) {
					datasets = append(datasets, d.ID)
				}
			}
		} else if d, ok := snap.DatasetByName(l.Dataset); ok {
			datasets = append(datasets, d.ID)
		}
		for _, d := range datasets {
			if l.Block == "" {
				ix.datasets[d] = append(ix.datasets[d], sc)
				continue
			}
			ds, _ := snap.Dataset(d)
			if b, ok := snap.BlockByName(ds.Name + "#" + l.Block); ok {
				ix.blocks[b.ID] = append(ix.blocks[b.ID], sc)
			}
		}
	}
	return ix, nil
}

// protects reports whether a lock covers the replica of block (of
// dataset) at site owned by group.
func (ix lockIndex) protects(dataset inventory.DatasetID, block inventory.BlockID, site inventory.SiteID, group inventory.GroupID) bool {
	for _, sc := range ix.datasets[dataset] {
		if sc.covers(site, group) {
			return true
		}
	}
	for _, sc := range ix.blocks[block] {
		if sc.covers(site, group) {
			return true
		}
	}
	return false
}
