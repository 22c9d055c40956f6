package detox

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
)

// countingSources answers like real producers and counts every call.
type countingSources struct {
	calls atomic.Int64
	locks []Lock
	acc   []AccessSummary
	flags map[inventory.DatasetID]bool
	prot  map[ReplicaKey]bool
}

func (s *countingSources) ActiveLocks(context.Context, time.Time) ([]Lock, error) {
	s.calls.Add(1)
	return slices.Clone(s.locks), nil
}

func (s *countingSources) Accesses(context.Context, time.Time) ([]AccessSummary, error) {
	s.calls.Add(1)
	return slices.Clone(s.acc), nil
}

func (s *countingSources) DatasetFlags(context.Context, *inventory.Snapshot, time.Time) (map[inventory.DatasetID]bool, error) {
	s.calls.Add(1)
	return maps.Clone(s.flags), nil
}

func (s *countingSources) ProtectedReplicas(context.Context, *inventory.Snapshot, time.Time) (map[ReplicaKey]bool, error) {
	s.calls.Add(1)
	return maps.Clone(s.prot), nil
}

func (s *countingSources) sources() Sources {
	return Sources{Locks: s, Accesses: s, Enforcer: s, TapeRequests: s, UnhandledCopies: s, ProtectedSites: s}
}

// purityFixture is a small synthetic inventory, the Physics-shaped policy
// and producers whose answers change the plan (locks, accesses, flags,
// enforcer protection all name real data).
func purityFixture(t *testing.T) (*inventory.Snapshot, *policy.Policy, *countingSources) {
	t.Helper()
	ctx := context.Background()
	spec := synth.CMS()
	spec.Sites, spec.Datasets = 12, 400
	store, _, err := synth.Build(ctx, testdb.SQLite(t), testLog(t), spec, nil)
	require.NoError(t, err)
	snap := store.Snapshot()
	pol, err := policy.LoadPolicy("testdata/policies/physics-default.txt", policy.PolicyOptions{})
	require.NoError(t, err)
	src := &countingSources{flags: map[inventory.DatasetID]bool{}, prot: map[ReplicaKey]bool{}}
	i := 0
	for d := range snap.Datasets() {
		for r := range snap.DatasetReplicas(d.ID) {
			site, _ := snap.Site(r.Site)
			switch i % 7 {
			case 0:
				src.locks = append(src.locks, Lock{Dataset: d.Name, Sites: []string{site.Name}})
			case 1:
				src.acc = append(src.acc, AccessSummary{Dataset: d.Name, Site: site.Name, NumAccess: 3, LastAccess: 1_759_000_000})
			case 2:
				src.flags[d.ID] = true
			case 3:
				src.prot[ReplicaKey{d.ID, r.Site}] = true
			}
			i++
		}
	}
	return snap, pol, src
}

// forbiddenSources fails the test if planning reaches any producer.
type forbiddenSources struct{ t *testing.T }

func (f forbiddenSources) ActiveLocks(context.Context, time.Time) ([]Lock, error) {
	f.t.Error("PlanWith asked a lock source")
	return nil, nil
}

func (f forbiddenSources) Accesses(context.Context, time.Time) ([]AccessSummary, error) {
	f.t.Error("PlanWith asked an access source")
	return nil, nil
}

func (f forbiddenSources) DatasetFlags(context.Context, *inventory.Snapshot, time.Time) (map[inventory.DatasetID]bool, error) {
	f.t.Error("PlanWith asked a dataset flag source")
	return nil, nil
}

func (f forbiddenSources) ProtectedReplicas(context.Context, *inventory.Snapshot, time.Time) (map[ReplicaKey]bool, error) {
	f.t.Error("PlanWith asked a protection source")
	return nil, nil
}

// withoutTiming drops what legitimately differs between two runs of the
// same plan: how long it took.
func withoutTiming(p *Plan) *Plan {
	c := *p
	c.Elapsed = 0
	return &c
}

func TestPlanWithIsPure(t *testing.T) {
	ctx := context.Background()
	snap, pol, src := purityFixture(t)
	at := time.Unix(1_760_000_000, 0)

	in, err := src.sources().Gather(ctx, snap, pol, at)
	require.NoError(t, err)
	require.EqualValues(t, 6, src.calls.Load(), "Gather asks each producer the policy needs once (locks, accesses, enforcer, three flag sources)")
	before := in
	before.Locks, before.Accesses = slices.Clone(in.Locks), slices.Clone(in.Accesses)
	before.EnforcerProtected = maps.Clone(in.EnforcerProtected)

	no := forbiddenSources{t}
	opts := PlanOptions{At: at, Sources: Sources{Locks: no, Accesses: no, Enforcer: no, TapeRequests: no, UnhandledCopies: no, ProtectedSites: no}}
	first, err := PlanWith(ctx, snap, pol, in, opts)
	require.NoError(t, err)
	second, err := PlanWith(ctx, snap, pol, in, opts)
	require.NoError(t, err)
	require.EqualValues(t, 6, src.calls.Load(), "planning asked a producer")
	require.Equal(t, withoutTiming(first), withoutTiming(second), "same inputs, different plans")
	require.Equal(t, before, in, "PlanWith changed its inputs")
	require.NotEmpty(t, first.Deletions)

	// PlanCycle is Gather then PlanWith: the same plan.
	whole, err := PlanCycle(ctx, snap, pol, PlanOptions{At: at, Sources: src.sources()})
	require.NoError(t, err)
	require.Equal(t, withoutTiming(first), withoutTiming(whole))

	// The inputs decide: without the locks and protections the plan differs,
	// so the equality above is not two plans that ignore their inputs.
	bare := in
	bare.Locks, bare.EnforcerProtected = []Lock{}, map[ReplicaKey]bool{}
	other, err := PlanWith(ctx, snap, pol, bare, opts)
	require.NoError(t, err)
	require.NotEqual(t, withoutTiming(first).Replicas, withoutTiming(other).Replicas)
}

func TestPlanWithRefusesInputsWithoutAProducer(t *testing.T) {
	ctx := context.Background()
	snap, pol, src := purityFixture(t)
	at := time.Unix(1_760_000_000, 0)
	in, err := src.sources().Gather(ctx, snap, pol, at)
	require.NoError(t, err)
	in.Accesses = nil // the policy ranks by dataset.usage_rank
	_, err = PlanWith(ctx, snap, pol, in, PlanOptions{At: at})
	require.ErrorIs(t, err, ErrNoProducer)
	require.ErrorContains(t, err, "dataset.usage_rank needs the \"accesses\" producer")

	// An empty answer is a producer that knows nothing: it plans.
	in.Accesses = []AccessSummary{}
	_, err = PlanWith(ctx, snap, pol, in, PlanOptions{At: at})
	require.NoError(t, err)
}

func TestGatherAsksOnlyWhatThePolicyNeeds(t *testing.T) {
	ctx := context.Background()
	snap, _, src := purityFixture(t)
	pol, err := policy.ParsePolicy("minimal.txt", []byte("Partition Default\nOn site.name == T2_*\nWhen site.occupancy > 0.9\nUntil site.occupancy < 0.8\nDismiss\n"), policy.PolicyOptions{})
	require.NoError(t, err)
	in, err := src.sources().Gather(ctx, snap, pol, time.Unix(1_760_000_000, 0))
	require.NoError(t, err)
	require.EqualValues(t, 1, src.calls.Load(), "locks only: they are a safety rule, the policy uses nothing else")
	require.NotNil(t, in.Locks)
	require.Nil(t, in.Accesses)
	require.Nil(t, in.UnhandledCopies)
}
