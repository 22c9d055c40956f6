package detox

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// ErrDiffInput is wrapped by every invalid DiffSpec (unknown partition,
// a policy that does not parse, a bad scope): the caller's mistake.
var ErrDiffInput = apierr.New(apierr.ErrBadRequest, "invalid policy diff")

// DiffSpec is what a policy diff compares: side A is policy A under scope
// ScopeA, side B policy B (nil: A's) under ScopeB; an empty scope is the
// partition's configured copy_counts. Both are planned on one snapshot
// with one clock (At; zero: now), so only the policies or scopes differ.
type DiffSpec struct {
	Partition      string
	A, B           *policy.Policy
	ScopeA, ScopeB CopyScope
	At             time.Time
}

// DiffSideReport says what one side decided for a changed replica.
// Decision is "none" when the side did not decide it (outside its
// partition or not at one of its target sites).
type DiffSideReport struct {
	Decision string `json:"decision"`
	Line     int    `json:"line"`
	Rule     string `json:"rule"`
	Reason   string `json:"reason"`
}

// DiffChangeReport is one changed (part of a) replica. Blocks is "all"
// or the changed block names, space-separated.
type DiffChangeReport struct {
	Dataset string         `json:"dataset"`
	Blocks  string         `json:"blocks"`
	Size    int64          `json:"size"`
	A       DiffSideReport `json:"a"`
	B       DiffSideReport `json:"b"`
}

// DiffSiteReport is a site's changes: Freed is what B deletes and A does
// not, Kept what A deletes and B does not.
type DiffSiteReport struct {
	Site    string             `json:"site"`
	Freed   int64              `json:"freed_bytes"`
	Kept    int64              `json:"kept_bytes"`
	Changes []DiffChangeReport `json:"changes"`
}

// DiffPolicyInfo names a side: its policy (file or name) and copy-count
// scope.
type DiffPolicyInfo struct {
	Policy     string `json:"policy"`
	CopyCounts string `json:"copy_counts"`
}

// DiffReport is a policy diff as the CLI, the REST API and the console
// show it: sites sorted by name, changes by dataset.
type DiffReport struct {
	Partition    string           `json:"partition"`
	InventorySeq uint64           `json:"inventory_seq"`
	A            DiffPolicyInfo   `json:"a"`
	B            DiffPolicyInfo   `json:"b"`
	Freed        int64            `json:"freed_bytes"`
	Kept         int64            `json:"kept_bytes"`
	Sites        []DiffSiteReport `json:"sites"`
}

// ParsePolicy parses a policy text for partition (name labels it in
// errors) and checks it against the configured producers, as LoadPolicy
// does for a file. Its errors wrap ErrDiffInput when the text is at fault.
func (r *Runner) ParsePolicy(partition, name string, text []byte) (*policy.Policy, error) {
	p, err := policy.ParsePolicy(name, text, policy.PolicyOptions{Partition: partition})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDiffInput, err)
	}
	if p.Partition != partition {
		return nil, fmt.Errorf("%w: %s: policy is for partition %q, not %q", ErrDiffInput, name, p.Partition, partition)
	}
	if err := r.Sources.CheckProducers(p); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDiffInput, name, err)
	}
	return p, nil
}

// ParseScope reads a copy-count scope: "" (the partition's), partition or
// inventory.
func ParseScope(s string) (CopyScope, error) {
	switch sc := CopyScope(s); sc {
	case "", CopyScopePartition, CopyScopeInventory:
		return sc, nil
	}
	return "", fmt.Errorf("%w: copy counts scope %q: must be %q or %q", ErrDiffInput, s, CopyScopePartition, CopyScopeInventory)
}

// Diff plans spec's two sides on snap and reports every replica whose
// decision changes. Nothing is recorded or deleted.
func (r *Runner) Diff(ctx context.Context, snap *inventory.Snapshot, spec DiffSpec) (*DiffReport, error) {
	// A partition without configuration is planned with the defaults, as
	// `dynamo detox plan --policy` does.
	pc := r.Config.Partitions[spec.Partition]
	if _, ok := snap.PartitionByName(spec.Partition); !ok {
		return nil, fmt.Errorf("%w: no partition %q in the inventory", ErrDiffInput, spec.Partition)
	}
	if spec.A == nil {
		return nil, fmt.Errorf("%w: no policy for side A", ErrDiffInput)
	}
	if spec.B == nil {
		spec.B = spec.A
	}
	scope := func(s CopyScope) (CopyScope, error) {
		if s == "" {
			s = pc.CopyCounts
		}
		if s == "" {
			s = CopyScopePartition
		}
		return ParseScope(string(s))
	}
	sa, err := scope(spec.ScopeA)
	if err != nil {
		return nil, err
	}
	sb, err := scope(spec.ScopeB)
	if err != nil {
		return nil, err
	}
	if spec.At.IsZero() {
		spec.At = time.Now()
	}
	opts := r.PlanOptions(spec.Partition, spec.At)
	opts.CopyCounts = sa
	planA, err := PlanCycle(ctx, snap, spec.A, opts)
	if err != nil {
		return nil, fmt.Errorf("side A: %w", err)
	}
	opts.CopyCounts = sb
	planB, err := PlanCycle(ctx, snap, spec.B, opts)
	if err != nil {
		return nil, fmt.Errorf("side B: %w", err)
	}
	diff, err := DiffPlans(planA, planB)
	if err != nil {
		return nil, err
	}
	rep := &DiffReport{Partition: spec.Partition, InventorySeq: snap.Seq(),
		A: DiffPolicyInfo{Policy: spec.A.File, CopyCounts: string(sa)}, B: DiffPolicyInfo{Policy: spec.B.File, CopyCounts: string(sb)},
		Sites: make([]DiffSiteReport, 0, len(diff))}
	side := func(s DiffSide) DiffSideReport {
		if s.Decision == 0 {
			return DiffSideReport{Decision: "none"}
		}
		return DiffSideReport{Decision: s.Decision.String(), Line: s.Line, Rule: s.Rule, Reason: string(s.Reason)}
	}
	for _, sd := range diff {
		out := DiffSiteReport{Site: sd.Site, Freed: sd.Freed, Kept: sd.Kept, Changes: make([]DiffChangeReport, 0, len(sd.Changes))}
		for _, c := range sd.Changes {
			out.Changes = append(out.Changes, DiffChangeReport{Dataset: c.Dataset, Blocks: BlockNames(snap, c.Blocks), Size: c.Size,
				A: side(c.A), B: side(c.B)})
		}
		rep.Freed += sd.Freed
		rep.Kept += sd.Kept
		rep.Sites = append(rep.Sites, out)
	}
	return rep, nil
}

// BlockNames names block ids for display: "all" for nil (every block),
// else the block names space-separated.
func BlockNames(snap *inventory.Snapshot, ids []inventory.BlockID) string {
	if ids == nil {
		return "all"
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if b, ok := snap.Block(id); ok {
			out = append(out, b.Name)
		}
	}
	return strings.Join(out, " ")
}

// String describes a side for a table cell.
func (s DiffSideReport) String() string {
	if s.Decision == "none" {
		return "not decided (outside the partition or not a target)"
	}
	return fmt.Sprintf("%s line %d %q (%s)", s.Decision, s.Line, s.Rule, s.Reason)
}

// DiffRequest is a policy diff asked for with policy texts (REST, the
// console). PolicyA "" is the partition's configured policy; PolicyB ""
// is side A's. Scopes as in DiffSpec.
type DiffRequest struct {
	Partition   string `json:"partition"`
	PolicyA     string `json:"policy_a,omitempty"`
	PolicyB     string `json:"policy_b,omitempty"`
	CopyCountsA string `json:"copy_counts_a,omitempty"`
	CopyCountsB string `json:"copy_counts_b,omitempty"`
}

// DiffTexts is Diff for a DiffRequest: it parses the texts (named
// "policy_a" and "policy_b" in errors) and loads the configured policy
// for an empty side A.
func (r *Runner) DiffTexts(ctx context.Context, snap *inventory.Snapshot, req DiffRequest) (*DiffReport, error) {
	if req.Partition == "" {
		return nil, fmt.Errorf("%w: partition: missing", ErrDiffInput)
	}
	spec := DiffSpec{Partition: req.Partition}
	var err error
	if spec.ScopeA, err = ParseScope(req.CopyCountsA); err != nil {
		return nil, err
	}
	if spec.ScopeB, err = ParseScope(req.CopyCountsB); err != nil {
		return nil, err
	}
	if req.PolicyA == "" {
		if r.Config.Partitions[req.Partition].Policy == "" {
			return nil, fmt.Errorf("%w: policy_a: partition %q has no configured policy; send its text", ErrDiffInput, req.Partition)
		}
		if spec.A, err = r.LoadPolicy(req.Partition, ""); err != nil {
			return nil, err
		}
	} else if spec.A, err = r.ParsePolicy(req.Partition, "policy_a", []byte(req.PolicyA)); err != nil {
		return nil, err
	}
	if req.PolicyB != "" {
		if spec.B, err = r.ParsePolicy(req.Partition, "policy_b", []byte(req.PolicyB)); err != nil {
			return nil, err
		}
	}
	rep, err := r.Diff(ctx, snap, spec)
	if err != nil {
		return nil, err
	}
	// Callers of the API see which policy, not where the server keeps it.
	if req.PolicyA == "" {
		rep.A.Policy = "configured " + filepath.Base(spec.A.File)
		if req.PolicyB == "" {
			rep.B.Policy = rep.A.Policy
		}
	}
	return rep, nil
}
