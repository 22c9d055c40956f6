package dealer

import (
	"context"

	"github.com/dynamo-go/dynamo/inventory"
)

// RequestStatus is the lifecycle state of a copy request.
type RequestStatus string

// Copy request states (Dynamo's): new → activated → completed, or rejected
// (by the Dealer, with a reason) or cancelled (by the user).
const (
	RequestNew       RequestStatus = "new"
	RequestActivated RequestStatus = "activated"
	RequestCompleted RequestStatus = "completed"
	RequestRejected  RequestStatus = "rejected"
	RequestCancelled RequestStatus = "cancelled"
)

// CopyRequest is a user's or production's request to copy data, as the
// registry holds it.
type CopyRequest struct {
	ID     int64         `json:"id"`
	User   string        `json:"user"`
	Status RequestStatus `json:"status"`
	// Items are dataset names (/A/B/C) or block names (/A/B/C#b).
	Items []string `json:"items"`
	// Sites are site names or glob patterns.
	Sites []string `json:"sites"`
	// Group owns the copies ("" : the Dealer's group).
	Group string `json:"group,omitempty"`
	// N is the number of copies in total over Sites; 0 means one copy at
	// every listed site.
	N int `json:"n"`
}

// RequestUpdate is a status change the Dealer wants for a copy request.
type RequestUpdate struct {
	ID     int64         `json:"id"`
	Status RequestStatus `json:"status"`
	// Reason says why (the rejection reason for RequestRejected).
	Reason string `json:"reason,omitempty"`
}

// RequestSource gives the Dealer the open copy requests and takes their
// status changes. The registry implements it.
type RequestSource interface {
	// OpenCopyRequests returns the requests with status new or activated.
	OpenCopyRequests(ctx context.Context) ([]CopyRequest, error)
	// UpdateCopyRequests records status changes. It must be idempotent:
	// Apply may repeat an update after a partial failure.
	UpdateCopyRequests(ctx context.Context, us []RequestUpdate) error
}

// BlockTransfer is the file-level work for one block copy: every file of
// Block is to be transferred to Destination from one of Sources.
type BlockTransfer struct {
	Cycle       int64             `json:"cycle"`
	Block       inventory.BlockID `json:"block_id"`
	BlockName   string            `json:"block"` // dataset#block
	Destination string            `json:"destination"`
	Sources     []string          `json:"sources"` // sites holding a complete replica, sorted
	Group       string            `json:"group"`
	Files       []inventory.File  `json:"files"`
}

// TransferQueue hands block transfers to the file-operation daemon.
type TransferQueue interface {
	// QueueTransfers subscribes every file of each transfer. It must be
	// idempotent per (block, destination, file): Apply queues after the
	// inventory write commits and repeats the queueing of a cycle whose
	// previous attempt failed.
	QueueTransfers(ctx context.Context, ts []BlockTransfer) error
}

// DatasetAccess is a number of accesses to a dataset at one time.
type DatasetAccess struct {
	Dataset string `json:"dataset"`
	Time    int64  `json:"time"` // unix seconds
	Count   int    `json:"count"`
}

// AccessSource gives the popularity plugin the recorded dataset accesses
// (Detox's access table).
type AccessSource interface {
	// DatasetAccesses returns the accesses recorded at or after since
	// (unix seconds), in any order.
	DatasetAccesses(ctx context.Context, since int64) ([]DatasetAccess, error)
}

// Protection is what the latest Detox cycle decided about protection, per
// site, in the Dealer's partition.
type Protection struct {
	Cycle int64 `json:"cycle"`
	// Fractions is protected bytes over quota, by site name.
	Fractions map[string]float64 `json:"fractions"`
	// LastCopies lists, by site name, the datasets protected there because
	// they are last copies: the balancer's candidates to move.
	LastCopies map[string][]string `json:"last_copies"`
}

// ProtectionSource gives the balancer the latest Detox protection figures.
// Detox implements it.
type ProtectionSource interface {
	// LatestProtection returns the figures of the latest Detox cycle of the
	// partition, or nil when there is none yet.
	LatestProtection(ctx context.Context, partition string) (*Protection, error)
}
