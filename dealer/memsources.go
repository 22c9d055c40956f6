package dealer

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// MemRequests is an in-memory RequestSource for tests and demos.
type MemRequests struct {
	mu   sync.Mutex
	reqs map[int64]*CopyRequest
	// Updates records every update received, in order.
	Updates []RequestUpdate
}

// NewMemRequests returns a MemRequests holding reqs.
func NewMemRequests(reqs ...CopyRequest) *MemRequests {
	m := &MemRequests{reqs: map[int64]*CopyRequest{}}
	for _, r := range reqs {
		r := r
		m.reqs[r.ID] = &r
	}
	return m
}

// OpenCopyRequests implements RequestSource.
func (m *MemRequests) OpenCopyRequests(context.Context) ([]CopyRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []CopyRequest
	for _, r := range m.reqs {
		if r.Status == RequestNew || r.Status == RequestActivated {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b CopyRequest) int { return cmpInt64(a.ID, b.ID) })
	return out, nil
}

// UpdateCopyRequests implements RequestSource.
func (m *MemRequests) UpdateCopyRequests(_ context.Context, us []RequestUpdate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range us {
		r, ok := m.reqs[u.ID]
		if !ok {
			return fmt.Errorf("copy request %d: %w", u.ID, ErrNotFound)
		}
		r.Status = u.Status
		m.Updates = append(m.Updates, u)
	}
	return nil
}

// Request returns a copy of one request.
func (m *MemRequests) Request(id int64) (CopyRequest, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.reqs[id]
	if !ok {
		return CopyRequest{}, false
	}
	return *r, true
}

// MemTransfers is an in-memory TransferQueue: it keeps one transfer per
// (block, destination), as the real queue's idempotency requires.
type MemTransfers struct {
	mu sync.Mutex
	// Queued holds the transfers in first-queued order.
	Queued []BlockTransfer
	seen   map[string]bool
	// Fail, when set, is returned by QueueTransfers (to test failures).
	Fail error
}

// QueueTransfers implements TransferQueue.
func (m *MemTransfers) QueueTransfers(_ context.Context, ts []BlockTransfer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	for _, t := range ts {
		k := fmt.Sprintf("%d@%s", t.Block, t.Destination)
		if !m.seen[k] {
			m.seen[k] = true
			m.Queued = append(m.Queued, t)
		}
	}
	return nil
}

// MemAccesses is an in-memory AccessSource.
type MemAccesses []DatasetAccess

// DatasetAccesses implements AccessSource.
func (m MemAccesses) DatasetAccesses(_ context.Context, since int64) ([]DatasetAccess, error) {
	var out []DatasetAccess
	for _, a := range m {
		if a.Time >= since {
			out = append(out, a)
		}
	}
	return out, nil
}

// MemProtection is an in-memory ProtectionSource returning one Protection
// for every partition.
type MemProtection struct{ P *Protection }

// LatestProtection implements ProtectionSource.
func (m MemProtection) LatestProtection(context.Context, string) (*Protection, error) {
	return m.P, nil
}

var (
	_ RequestSource    = (*MemRequests)(nil)
	_ TransferQueue    = (*MemTransfers)(nil)
	_ AccessSource     = MemAccesses(nil)
	_ ProtectionSource = MemProtection{}
)
