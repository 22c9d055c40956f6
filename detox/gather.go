package detox

import (
	"context"
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// Inputs is everything a cycle reads besides the inventory snapshot and the
// policy: what the attribute producers answered. Sources.Gather fetches it;
// tests and tools may build it directly. A nil field is a producer that is
// not available (a policy that needs it fails with ErrNoProducer); an
// empty, non-nil one is a producer that knows nothing.
type Inputs struct {
	Locks    []Lock          // blockreplica.is_locked; always gathered when a LockSource exists (a safety rule)
	Accesses []AccessSummary // dataset.last_access, dataset.usage_rank, replica.num_access, replica.last_used

	EnforcerProtected map[ReplicaKey]bool     // replica.enforcer_protected, from a ProtectionSource
	EnforcerRules     []*policy.EnforcerRules // or from rules with protect: true, evaluated by the cycle

	TapeRequested    map[inventory.DatasetID]bool    // dataset.tape_copy_requested
	UnhandledCopies  map[inventory.DatasetID]bool    // dataset.unhandled_copy_exists
	OnProtectedSite  map[inventory.DatasetID]bool    // dataset.on_protected_site
	UnknownInCatalog map[inventory.DatasetID]bool    // dataset.unknown_in_all_dbs
	LatestRelease    map[inventory.DatasetID]bool    // dataset.is_latest_production_release
	Demand           map[inventory.DatasetID]float64 // dataset.demand_rank
}

// available reports whether the inputs stand for the named producer.
func (in *Inputs) available(producer string) bool {
	switch producer {
	case "", policy.ProducerTape, policy.ProducerCopies, policy.ProducerOccupancy, policy.ProducerRelativeAge:
		return true
	case policy.ProducerLocks:
		return in.Locks != nil
	case policy.ProducerAccesses:
		return in.Accesses != nil
	case policy.ProducerEnforcer:
		return in.EnforcerProtected != nil || len(in.EnforcerRules) > 0
	case policy.ProducerTapeRequest:
		return in.TapeRequested != nil
	case policy.ProducerUnhandledCopy:
		return in.UnhandledCopies != nil
	case policy.ProducerProtectedSite:
		return in.OnProtectedSite != nil
	case policy.ProducerCatalog:
		return in.UnknownInCatalog != nil
	case policy.ProducerRelease:
		return in.LatestRelease != nil
	case policy.ProducerDemand:
		return in.Demand != nil
	}
	return false
}

// Gather asks the configured producers for what a cycle of pol at time at
// needs: locks always (a safety rule), the others only when the policy
// uses their attributes. It is the only part of a cycle that talks to
// databases and services; PlanWith then plans from the snapshot and the
// result alone.
func (s Sources) Gather(ctx context.Context, snap *inventory.Snapshot, pol *policy.Policy, at time.Time) (Inputs, error) {
	var in Inputs
	if err := s.CheckProducers(pol); err != nil {
		return in, err
	}
	need := map[string]bool{}
	for _, a := range pol.RequiredAttrs() {
		need[a] = true
	}
	var err error
	if s.Locks != nil {
		if in.Locks, err = s.Locks.ActiveLocks(ctx, at); err != nil {
			return in, fmt.Errorf("detox locks: %w", err)
		}
		in.Locks = nonNil(in.Locks)
	}
	if need[policy.ProducerAccesses] && s.Accesses != nil {
		if in.Accesses, err = s.Accesses.Accesses(ctx, at); err != nil {
			return in, fmt.Errorf("dataset accesses: %w", err)
		}
		in.Accesses = nonNil(in.Accesses)
	}
	if need[policy.ProducerEnforcer] {
		if s.Enforcer != nil {
			m, err := s.Enforcer.ProtectedReplicas(ctx, snap, at)
			if err != nil {
				return in, fmt.Errorf("enforcer protection: %w", err)
			}
			in.EnforcerProtected = nonNilMap(m)
		}
		in.EnforcerRules = s.EnforcerRules
	}
	for _, f := range []struct {
		producer string
		src      DatasetFlagSource
		dst      *map[inventory.DatasetID]bool
	}{
		{policy.ProducerTapeRequest, s.TapeRequests, &in.TapeRequested},
		{policy.ProducerUnhandledCopy, s.UnhandledCopies, &in.UnhandledCopies},
		{policy.ProducerProtectedSite, s.ProtectedSites, &in.OnProtectedSite},
		{policy.ProducerCatalog, s.Catalog, &in.UnknownInCatalog},
		{policy.ProducerRelease, s.LatestRelease, &in.LatestRelease},
	} {
		if !need[f.producer] || f.src == nil {
			continue
		}
		m, err := f.src.DatasetFlags(ctx, snap, at)
		if err != nil {
			return in, fmt.Errorf("%s producer: %w", f.producer, err)
		}
		*f.dst = nonNilMap(m)
	}
	if need[policy.ProducerDemand] && s.Demand != nil {
		m, err := s.Demand.DatasetNumbers(ctx, snap, at)
		if err != nil {
			return in, fmt.Errorf("demand producer: %w", err)
		}
		in.Demand = nonNilMap(m)
	}
	return in, nil
}

// nonNil keeps "the producer answered nothing" apart from "no producer".
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}
