package detox

import (
	"fmt"
	"sort"
	"time"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// Decision is what a cycle decided for a block replica.
type Decision uint8

// Decisions. Dismiss in a policy becomes Delete or Keep depending on the
// site's trigger, the Until line and the order.
const (
	DecisionKeep    Decision = iota + 1 // stays; may be deleted by a later cycle
	DecisionProtect                     // a Protect line (or a safety rule) keeps it
	DecisionDelete                      // deleted by this cycle
	DecisionIgnore                      // an Ignore line dropped it from consideration
)

// String names the decision as stored in the cycle history.
func (d Decision) String() string {
	switch d {
	case DecisionKeep:
		return "keep"
	case DecisionProtect:
		return "protect"
	case DecisionDelete:
		return "delete"
	case DecisionIgnore:
		return "ignore"
	}
	return "unknown"
}

// ParseDecision is the inverse of Decision.String.
func ParseDecision(s string) (Decision, error) {
	for d := DecisionKeep; d <= DecisionIgnore; d++ {
		if d.String() == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown decision %q", s)
}

// Reason says why a decision was taken. Every decision carries one.
type Reason string

// Reasons.
const (
	ReasonRule         Reason = "policy line"                      // the line (Line) decided
	ReasonDefault      Reason = "default decision"                 // no line matched
	ReasonDeleteLine   Reason = "delete line"                      // a Delete line: deleted regardless of watermarks
	ReasonDismissed    Reason = "dismissed, site over its trigger" // a Dismiss candidate deleted to reach Until
	ReasonNotTriggered Reason = "dismissed, site not triggered"    // candidate at a site no When line matched
	ReasonUntilReached Reason = "dismissed, Until reached"         // candidate left once the site met Until
	ReasonLastCopy     Reason = "last copy"                        // safety: no other complete copy at a ready or waitroom site would remain
	// ReasonLastCopyDeleted marks a deletion of a block's last copy, which
	// only a Delete line in a partition that opted in can make.
	ReasonLastCopyDeleted Reason = "LAST COPY deleted by a Delete line (partition opt-in)"
	ReasonLocked          Reason = "locked"                        // safety: a detox lock holds it
	ReasonReowned         Reason = "re-owned to the dataset owner" // a block line's deletion handed over instead
)

// ReplicaDecision is the decision for the block replicas of one dataset
// replica that share decision, line and reason. Blocks is nil when the
// decision covers every block replica of the dataset replica in the
// partition.
type ReplicaDecision struct {
	Dataset  inventory.DatasetID
	Site     inventory.SiteID
	Blocks   []inventory.BlockID
	Decision Decision
	Action   policy.Action // the matched action (the default's for no match)
	Line     int           // policy line that matched, 0 for the default decision
	Reason   Reason
	Size     int64
	Files    int64
}

// Deletion is one block replica the plan deletes.
type Deletion struct {
	Block   inventory.BlockID
	Site    inventory.SiteID
	Dataset inventory.DatasetID
	Size    int64
	Files   int32
	Line    int
	Reason  Reason
	Seq     int // order in which the cycle deleted it (1-based)
	// LastCopy: no other copy survives this deletion; allowed only by the
	// partition's opt-in (Reason is ReasonLastCopyDeleted).
	LastCopy bool
}

// Reassignment is a block replica a block line would have deleted that is
// handed to the dataset replica's owner instead: its owner (From) owns
// blocks, the dataset replica's owner (To) owns datasets (Dynamo's rule).
type Reassignment struct {
	Block   inventory.BlockID
	Site    inventory.SiteID
	Dataset inventory.DatasetID
	From    inventory.GroupID
	To      inventory.GroupID
	Size    int64
}

// SitePlan summarizes a target site.
type SitePlan struct {
	Site        inventory.SiteID
	Name        string
	Quota       int64
	Before      int64 // bytes in the partition before the cycle
	After       int64 // bytes once the plan is applied
	Triggered   bool  // a When line matched at the start
	Released    bool  // the Until line held at the end
	Deleted     int64 // bytes deleted
	DeletedReps int   // block replicas deleted
	Files       int64 // files deleted
	Protected   int64 // bytes protected
	Iterations  int   // iterations that picked this site
}

// Plan is the outcome of one cycle: a decision with its reason for every
// block replica in the partition at the target sites, and the deletions.
// It is pure data: Apply executes it.
type Plan struct {
	Partition     string
	PartitionID   inventory.PartitionID
	Policy        *policy.Policy
	At            time.Time
	Seq           uint64 // inventory sequence the plan was computed on
	Sites         []SitePlan
	Replicas      []ReplicaDecision
	Deletions     []Deletion
	Reassignments []Reassignment
	Iterations    int
	Elapsed       time.Duration

	snap *inventory.Snapshot
}

// Snapshot returns the inventory snapshot the plan was computed on.
func (p *Plan) Snapshot() *inventory.Snapshot { return p.snap }

// DeletedBytes is the plan's total deletion volume.
func (p *Plan) DeletedBytes() int64 {
	var n int64
	for _, d := range p.Deletions {
		n += d.Size
	}
	return n
}

// LineText returns the text of the policy line, or "default" for 0.
func (p *Plan) LineText(line int) string {
	if line == 0 || p.Policy == nil {
		if p.Policy != nil {
			return p.Policy.Default.String() + " (default)"
		}
		return "default"
	}
	for _, r := range p.Policy.Rules {
		if r.Line == line {
			return r.Text
		}
	}
	return fmt.Sprintf("line %d", line)
}

// Explain returns the decisions for a dataset at a site, in plan order.
func (p *Plan) Explain(ds inventory.DatasetID, site inventory.SiteID) []ReplicaDecision {
	var out []ReplicaDecision
	i := sort.Search(len(p.Replicas), func(i int) bool {
		r := p.Replicas[i]
		return r.Site > site || (r.Site == site && r.Dataset >= ds)
	})
	for ; i < len(p.Replicas) && p.Replicas[i].Site == site && p.Replicas[i].Dataset == ds; i++ {
		out = append(out, p.Replicas[i])
	}
	return out
}
