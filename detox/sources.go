package detox

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// ErrNoProducer: a policy uses an attribute that no configured producer
// provides. It is reported when the policy is loaded, before any evaluation.
var ErrNoProducer = errors.New("attribute has no producer")

// LockSource yields the detox locks active at a time. Expired locks must not
// be returned (callers filter again, so an implementation that does is only
// wasteful). The registry's detox_locks table implements it.
type LockSource interface {
	ActiveLocks(ctx context.Context, at time.Time) ([]Lock, error)
}

// MemLocks is a LockSource held in memory, for tests and tools. Safe for
// concurrent use.
type MemLocks struct {
	mu    sync.Mutex
	locks []Lock
}

// Add registers a lock.
func (m *MemLocks) Add(l Lock) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.locks = append(m.locks, l)
}

// ActiveLocks implements LockSource.
func (m *MemLocks) ActiveLocks(_ context.Context, at time.Time) ([]Lock, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Lock
	for _, l := range m.locks {
		if l.Expires.IsZero() || l.Expires.After(at) {
			out = append(out, l)
		}
	}
	return out, nil
}

// AccessSummary is the access record of a dataset at a site.
type AccessSummary struct {
	Dataset    string
	Site       string
	NumAccess  int64
	LastAccess int64 // unix seconds
}

// AccessSource yields the access history per dataset and site. The
// detox_accesses table (RecordAccess, DBAccesses) implements it.
type AccessSource interface {
	Accesses(ctx context.Context, at time.Time) ([]AccessSummary, error)
}

// DatasetFlagSource yields the datasets for which a boolean attribute holds
// (a tape copy requested, an unhandled copy request, a copy on a protected
// site, unknown to the catalogs, made with the latest release).
type DatasetFlagSource interface {
	DatasetFlags(ctx context.Context, snap *inventory.Snapshot, at time.Time) (map[inventory.DatasetID]bool, error)
}

// DatasetNumberSource yields a numeric per-dataset attribute (demand rank);
// datasets it omits get 0.
type DatasetNumberSource interface {
	DatasetNumbers(ctx context.Context, snap *inventory.Snapshot, at time.Time) (map[inventory.DatasetID]float64, error)
}

// ReplicaKey names a dataset replica.
type ReplicaKey struct {
	Dataset inventory.DatasetID
	Site    inventory.SiteID
}

// ProtectionSource yields the dataset replicas protected by enforcer rules
// (replica.enforcer_protected). The Dealer's enforcer implements it.
type ProtectionSource interface {
	ProtectedReplicas(ctx context.Context, snap *inventory.Snapshot, at time.Time) (map[ReplicaKey]bool, error)
}

// StaticDatasets is a DatasetFlagSource and DatasetNumberSource over fixed
// dataset names, for tests and for operators who set a flag by hand.
type StaticDatasets map[string]float64

// DatasetFlags implements DatasetFlagSource: every listed dataset with a
// non-zero value.
func (s StaticDatasets) DatasetFlags(_ context.Context, snap *inventory.Snapshot, _ time.Time) (map[inventory.DatasetID]bool, error) {
	out := map[inventory.DatasetID]bool{}
	for name, v := range s {
		if d, ok := snap.DatasetByName(name); ok && v != 0 {
			out[d.ID] = true
		}
	}
	return out, nil
}

// DatasetNumbers implements DatasetNumberSource.
func (s StaticDatasets) DatasetNumbers(_ context.Context, snap *inventory.Snapshot, _ time.Time) (map[inventory.DatasetID]float64, error) {
	out := map[inventory.DatasetID]float64{}
	for name, v := range s {
		if d, ok := snap.DatasetByName(name); ok {
			out[d.ID] = v
		}
	}
	return out, nil
}

// StaticReplicas is a ProtectionSource over fixed "dataset@site" names.
type StaticReplicas []string

// ProtectedReplicas implements ProtectionSource.
func (s StaticReplicas) ProtectedReplicas(_ context.Context, snap *inventory.Snapshot, _ time.Time) (map[ReplicaKey]bool, error) {
	out := map[ReplicaKey]bool{}
	for _, n := range s {
		ds, site, ok := strings.Cut(n, "@")
		d, ok1 := snap.DatasetByName(ds)
		st, ok2 := snap.SiteByName(site)
		if ok && ok1 && ok2 {
			out[ReplicaKey{d.ID, st.ID}] = true
		}
	}
	return out, nil
}

// Sources are the attribute producers that need more than the inventory.
// A nil field means "not available": a policy needing it fails to load.
// Producers computed from the inventory alone (tape, copies, occupancy,
// relative_age) are always available.
type Sources struct {
	Locks           LockSource              // blockreplica.is_locked
	Accesses        AccessSource            // dataset.last_access, dataset.usage_rank, replica.num_access, replica.last_used
	Enforcer        ProtectionSource        // replica.enforcer_protected
	EnforcerRules   []*policy.EnforcerRules // or: the Dealer's rule files; rules with protect: true protect what they match
	TapeRequests    DatasetFlagSource       // dataset.tape_copy_requested
	UnhandledCopies DatasetFlagSource       // dataset.unhandled_copy_exists
	ProtectedSites  DatasetFlagSource       // dataset.on_protected_site
	Catalog         DatasetFlagSource       // dataset.unknown_in_all_dbs (the datasets unknown everywhere)
	LatestRelease   DatasetFlagSource       // dataset.is_latest_production_release
	Demand          DatasetNumberSource     // dataset.demand_rank
}

// available reports whether the named producer can run.
func (s *Sources) available(producer string) bool {
	switch producer {
	case "", policy.ProducerTape, policy.ProducerCopies, policy.ProducerOccupancy, policy.ProducerRelativeAge:
		return true
	case policy.ProducerLocks:
		return s.Locks != nil
	case policy.ProducerAccesses:
		return s.Accesses != nil
	case policy.ProducerEnforcer:
		return s.Enforcer != nil || len(s.EnforcerRules) > 0
	case policy.ProducerTapeRequest:
		return s.TapeRequests != nil
	case policy.ProducerUnhandledCopy:
		return s.UnhandledCopies != nil
	case policy.ProducerProtectedSite:
		return s.ProtectedSites != nil
	case policy.ProducerCatalog:
		return s.Catalog != nil
	case policy.ProducerRelease:
		return s.LatestRelease != nil
	case policy.ProducerDemand:
		return s.Demand != nil
	}
	return false
}

// CheckProducers returns an error naming every variable of p whose producer
// is not available, with the line that uses it. It is the load-time check:
// a policy that passes never meets a missing attribute while running.
func (s *Sources) CheckProducers(p *policy.Policy) error {
	return checkProducers(p, s.available)
}

// checkProducers names every variable of p whose producer available
// refuses, with the line that uses it.
func checkProducers(p *policy.Policy, available func(producer string) bool) error {
	type problem struct {
		line int
		msg  string
	}
	var msgs []problem
	seen := map[string]bool{}
	add := func(line int, v *policy.Variable) {
		if !available(v.Producer) && !seen[v.Name] {
			seen[v.Name] = true
			msgs = append(msgs, problem{line, fmt.Sprintf("%s:%d: %s needs the %q producer, which is not configured", p.File, line, v.Name, v.Producer)})
		}
	}
	check := func(c *policy.Condition, line int) {
		for _, v := range c.Variables() {
			add(line, v)
		}
	}
	for _, l := range p.On {
		check(l.Cond, l.Line)
	}
	for _, l := range p.When {
		check(l.Cond, l.Line)
	}
	for _, l := range p.Until {
		check(l.Cond, l.Line)
	}
	for _, r := range p.Rules {
		check(r.Cond, r.Line)
	}
	for _, k := range p.Order {
		if k.Var != nil {
			add(k.At.Line, k.Var)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].line < msgs[j].line })
	lines := make([]string, len(msgs))
	for i, m := range msgs {
		lines[i] = m.msg
	}
	return fmt.Errorf("%w:\n%s", ErrNoProducer, strings.Join(lines, "\n"))
}
