package dealer

import (
	"github.com/dynamo-go/dynamo/inventory"
)

// Proposal is one plugin's wish: copy an item (a dataset, or some of its
// blocks) to a destination (or let the Dealer choose one), owned by a
// group. Plugins fill the ids; the planner fills the display names.
type Proposal struct {
	Plugin   string `json:"plugin"`
	Priority int    `json:"priority"`

	Dataset inventory.DatasetID `json:"dataset_id"`
	// Blocks is the subset of the dataset's blocks to copy; nil means the
	// whole dataset (the new dataset replica then grows with the dataset).
	Blocks []inventory.BlockID `json:"block_ids,omitempty"`
	// Destination is the site to copy to; 0 lets the Dealer choose.
	Destination inventory.SiteID `json:"destination_id,omitempty"`
	// Sites restricts the Dealer's choice (nil: any target site).
	Sites []inventory.SiteID `json:"sites,omitempty"`
	// Sources restricts where the data may come from (nil: any site).
	Sources []inventory.SiteID `json:"sources,omitempty"`
	// Group owns the new replicas; "" means the Dealer's group.
	Group string `json:"group,omitempty"`
	// Reassign asks to hand the replica at Destination to Group instead of
	// copying (group reassignment).
	Reassign bool `json:"reassign,omitempty"`
	// RequestID is the copy request this serves (requests plugin), or 0.
	RequestID int64 `json:"request_id,omitempty"`
	// Note says why the plugin proposed it (rule name, weight, ...).
	Note string `json:"note,omitempty"`

	// Item names the item: "dataset", "dataset#block" or
	// "dataset (N blocks)". Set by the planner.
	Item string `json:"item"`
}

// mergeProposals interleaves the plugins' lists by weight 1/priority, the
// deterministic counterpart of Dynamo's weighted random interleaving: smooth
// weighted round-robin. Each plugin keeps its own order; at every step each
// non-exhausted plugin earns its weight and the richest (ties: earlier in
// PluginNames) gives its next proposal and pays the total weight of the
// non-exhausted plugins. Over any prefix each plugin's share is within one
// proposal of its weight share, and no random draw is needed. A priority-0
// plugin is exclusive: when any list with priority 0 exists, only those are
// merged (Dynamo's rule).
func mergeProposals(names []string, lists map[string][]Proposal, prio map[string]int) []Proposal {
	type src struct {
		list    []Proposal
		weight  float64
		current float64
	}
	exclusive := false
	for _, n := range names {
		if len(lists[n]) > 0 && prio[n] == 0 {
			exclusive = true
		}
	}
	var srcs []*src
	total := 0
	for _, n := range names {
		l := lists[n]
		if len(l) == 0 || exclusive != (prio[n] == 0) {
			continue
		}
		w := 1.0
		if prio[n] > 0 {
			w = 1 / float64(prio[n])
		}
		srcs = append(srcs, &src{list: l, weight: w})
		total += len(l)
	}
	out := make([]Proposal, 0, total)
	for len(out) < total {
		var best *src
		sum := 0.0
		for _, s := range srcs {
			if len(s.list) == 0 {
				continue
			}
			s.current += s.weight
			sum += s.weight
			if best == nil || s.current > best.current {
				best = s
			}
		}
		best.current -= sum
		out = append(out, best.list[0])
		best.list = best.list[1:]
	}
	return out
}
