package consistency

import (
	"context"
	"slices"
	"sync"

	"github.com/dynamo-go/dynamo/inventory"
)

// Transfer asks for a file to be copied to the site again (it is missing
// or its copy there is corrupt); the file-operation daemon picks a source.
type Transfer struct {
	LFN     string `json:"lfn"`
	FileID  int64  `json:"file_id"`
	BlockID int32  `json:"block_id"`
	Size    int64  `json:"size"`
	Adler32 string `json:"adler32,omitempty"`
	// Overwrite is set when a corrupt copy is at the destination.
	Overwrite bool `json:"overwrite,omitempty"`
}

// Deletion asks for an orphan file to be removed from the site.
type Deletion struct {
	LFN  string `json:"lfn"`
	Size int64  `json:"size"`
}

// Actions is what the checker needs from the file-operation daemon: queue
// transfers, and say what is already queued or running so that files in
// flight are not judged. Implementations must be safe for concurrent use
// and make queueing idempotent (a file already queued is not queued twice).
type Actions interface {
	// QueueTransfers queues transfers of inventory files to site.
	QueueTransfers(ctx context.Context, site string, files []Transfer) error
	// InFlight returns the LFNs with a transfer to, or a deletion at, site
	// queued or running.
	InFlight(ctx context.Context, site string) (map[string]struct{}, error)
}

// DeletionQueuer is implemented by Actions that can queue deletions of
// orphans, files the inventory does not know. Without it the checker
// removes orphans past the grace period itself, through the site's driver
// (as Dynamo's consistency did), after the same safety valves.
type DeletionQueuer interface {
	QueueDeletions(ctx context.Context, site string, files []Deletion) error
}

// TxnQueuer is implemented by Actions that can queue transfers as part of
// the inventory write that takes the lost files out of their replicas, so
// that both commit or neither does. Without it the transfers are queued
// right after that write (and a failure in between is caught by the next
// run as stalled files).
type TxnQueuer interface {
	QueueTransfersTxn(t *inventory.Txn, site inventory.SiteID, files []Transfer) error
}

// MemActions is an in-memory Actions for tests and for running the checker
// without a file-operation daemon: it records what was queued.
type MemActions struct {
	mu        sync.Mutex
	transfers map[string][]Transfer
	deletions map[string][]Deletion
}

// NewMemActions returns an empty MemActions.
func NewMemActions() *MemActions {
	return &MemActions{transfers: map[string][]Transfer{}, deletions: map[string][]Deletion{}}
}

// QueueTransfers records the transfers, skipping files already queued.
func (m *MemActions) QueueTransfers(_ context.Context, site string, files []Transfer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range files {
		if !slices.ContainsFunc(m.transfers[site], func(t Transfer) bool { return t.LFN == f.LFN }) {
			m.transfers[site] = append(m.transfers[site], f)
		}
	}
	return nil
}

// QueueDeletions records the deletions, skipping files already queued.
func (m *MemActions) QueueDeletions(_ context.Context, site string, files []Deletion) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range files {
		if !slices.ContainsFunc(m.deletions[site], func(d Deletion) bool { return d.LFN == f.LFN }) {
			m.deletions[site] = append(m.deletions[site], f)
		}
	}
	return nil
}

// InFlight returns every LFN queued for site.
func (m *MemActions) InFlight(_ context.Context, site string) (map[string]struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]struct{}{}
	for _, t := range m.transfers[site] {
		out[t.LFN] = struct{}{}
	}
	for _, d := range m.deletions[site] {
		out[d.LFN] = struct{}{}
	}
	return out, nil
}

// Transfers returns a copy of the transfers queued for site.
func (m *MemActions) Transfers(site string) []Transfer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.transfers[site])
}

// Deletions returns a copy of the deletions queued for site.
func (m *MemActions) Deletions(site string) []Deletion {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.deletions[site])
}

// Complete forgets everything queued for site, as if the daemon finished it.
func (m *MemActions) Complete(site string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.transfers, site)
	delete(m.deletions, site)
}

var (
	_ Actions        = (*MemActions)(nil)
	_ DeletionQueuer = (*MemActions)(nil)
)
