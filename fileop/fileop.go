// Package fileop is the file-operation daemon: it turns requests to copy or
// delete files at sites (subscriptions, queued by Dealer, Detox, the
// consistency checker or an operator) into storage operations, and records
// each finished one in the inventory in the same database transaction that
// closes the subscription.
//
// The life of a subscription (one file, one site, transfer or deletion):
//
//	new ──claim──▶ inbatch ──success──▶ done        (inventory updated, same tx)
//	 ▲               │  └──recoverable failure──▶ retry ──(backoff)──▶ claim
//	 │               └──irrecoverable / exhausted──▶ held(reason)
//	 └────release───────────────────────────────────── held
//	new/retry/held ──opposite subscription or cancel──▶ cancelled
//
// Every transition is a compare-and-set on the state column (UPDATE ...
// WHERE id = ? AND state = ?) whose rows-affected count is checked, so two
// actors can never both move a row, and a crash at any point leaves each row
// in exactly one state. Rows found inbatch at start-up are resumed: their
// batch is handed to the backend again, which first checks whether the work
// was already done (destination present with the right size and checksum,
// file already gone, FTS3 job still known), so nothing is lost and nothing
// is done twice.
//
// Backends (Backend) carry out batches: the native engine (Go worker pools
// over fileop/driver), gfal2 (gfal-copy/gfal-rm processes) and FTS3 (REST).
package fileop

import "github.com/dynamo-go/dynamo/internal/apierr"

// Op is the kind of a subscription.
type Op string

// The operations.
const (
	OpTransfer Op = "transfer"
	OpDeletion Op = "deletion"
)

// State is a subscription's state.
type State string

// The subscription states. Done and Cancelled are final.
const (
	StateNew       State = "new"
	StateInBatch   State = "inbatch"
	StateDone      State = "done"
	StateRetry     State = "retry"
	StateHeld      State = "held"
	StateCancelled State = "cancelled"
)

// HoldReason says why a subscription is held; an operator releases it
// (Release) once the cause is fixed.
type HoldReason string

// The hold reasons.
const (
	// HoldNoSource: no ready site holds a complete copy of the file.
	HoldNoSource HoldReason = "no_source"
	// HoldAllFailed: every source failed irrecoverably, or the retry budget
	// is spent.
	HoldAllFailed HoldReason = "all_failed"
	// HoldSiteUnavailable: the destination (or, for a deletion, the site) is
	// not ready or has no storage URL.
	HoldSiteUnavailable HoldReason = "site_unavailable"
	// HoldIrrecoverable: a deletion failed in a way retrying cannot fix.
	HoldIrrecoverable HoldReason = "irrecoverable"
)

// Errors.
var (
	// ErrConflict: a compare-and-set found the row in another state than
	// expected (another actor moved it first). Nothing was changed.
	ErrConflict = apierr.New(apierr.ErrConflict, "subscription changed concurrently")
	// ErrNotFound: no such subscription.
	ErrNotFound = apierr.New(apierr.ErrNotFound, "no such subscription")
	// ErrInvalid: a request names unknown objects or is malformed.
	ErrInvalid = apierr.New(apierr.ErrBadRequest, "invalid request")
)

// Table names.
const (
	TableSubscriptions  = "fileop_subscriptions"
	TableBatches        = "fileop_batches"
	TableSourceFailures = "fileop_source_failures"
	TableHistory        = "fileop_history"
)

// Subscription is one row of the queue.
type Subscription struct {
	ID         int64      `db:"id" json:"id"`
	Op         Op         `db:"op" json:"op"`
	FileID     int64      `db:"file_id" json:"file_id"`
	BlockID    int32      `db:"block_id" json:"block_id"`
	SiteID     int32      `db:"site_id" json:"site_id"`
	LFN        string     `db:"lfn" json:"lfn"`
	Size       int64      `db:"size" json:"size"`
	Adler32    string     `db:"adler32" json:"adler32,omitempty"`
	State      State      `db:"state" json:"state"`
	HoldReason HoldReason `db:"hold_reason" json:"hold_reason,omitempty"`
	Priority   int        `db:"priority" json:"priority"`
	Created    int64      `db:"created" json:"created"`
	Updated    int64      `db:"updated" json:"updated"`
	Tries      int        `db:"tries" json:"tries"`
	NextTry    int64      `db:"next_try_ns" json:"next_try_ns"`
	BatchID    int64      `db:"batch_id" json:"batch_id,omitempty"`
	SourceSite int32      `db:"source_site_id" json:"source_site_id,omitempty"`
	Message    string     `db:"message" json:"message,omitempty"`
}

const subCols = "id, op, file_id, block_id, site_id, lfn, size, adler32, state, hold_reason, priority, created, updated, tries, next_try_ns, batch_id, source_site_id, message"
