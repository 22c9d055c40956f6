package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

func init() {
	consistencyActions = func(e *env, store *inventory.Store) (consistency.Actions, error) {
		return consistencyQueue{d: e.db, store: store}, nil
	}
}

// consistencyQueue gives the consistency checker the file-operation queue.
// Transfers of lost files are queued inside the inventory write that takes
// them out of their replicas (TxnQueuer). It is no DeletionQueuer: the
// queue holds inventory files only, so the checker deletes orphans itself.
type consistencyQueue struct {
	d     *db.DB
	store *inventory.Store
}

var (
	_ consistency.Actions   = consistencyQueue{}
	_ consistency.TxnQueuer = consistencyQueue{}
)

func transferRequests(site inventory.SiteID, files []consistency.Transfer) []fileop.Request {
	reqs := make([]fileop.Request, len(files))
	for i, f := range files {
		reqs[i] = fileop.Request{Op: fileop.OpTransfer, Site: site,
			File: inventory.File{ID: inventory.FileID(f.FileID), Block: inventory.BlockID(f.BlockID), LFN: f.LFN, Size: f.Size, Adler32: f.Adler32}}
	}
	return reqs
}

func (q consistencyQueue) siteID(name string) (inventory.SiteID, error) {
	s, ok := q.store.Snapshot().SiteByName(name)
	if !ok {
		return 0, fmt.Errorf("consistency queue: unknown site %q", name)
	}
	return s.ID, nil
}

// QueueTransfers queues transfers in their own transaction (fileop's
// Enqueue is idempotent per file, site and op).
func (q consistencyQueue) QueueTransfers(ctx context.Context, site string, files []consistency.Transfer) error {
	id, err := q.siteID(site)
	if err != nil {
		return err
	}
	_, err = fileop.EnqueueTx(ctx, q.d, time.Now(), transferRequests(id, files))
	return err
}

// QueueTransfersTxn queues transfers as part of the inventory write t.
func (q consistencyQueue) QueueTransfersTxn(t *inventory.Txn, site inventory.SiteID, files []consistency.Transfer) error {
	reqs := transferRequests(site, files)
	at := t.At()
	t.Exec(func(ctx context.Context, tx *sqlx.Tx) error {
		_, err := fileop.Enqueue(ctx, q.d, tx, at, reqs)
		return err
	})
	return nil
}

// InFlight returns the LFNs with a live subscription at site (fileop's
// definition: waiting, in a batch, waiting for a retry, or held for an
// operator; a held transfer is known work, not a reason to queue it again).
func (q consistencyQueue) InFlight(ctx context.Context, site string) (map[string]struct{}, error) {
	id, err := q.siteID(site)
	if err != nil {
		return nil, err
	}
	out, err := fileop.InFlight(ctx, q.d, id)
	if err != nil {
		return nil, fmt.Errorf("files in flight at %s: %w", site, err)
	}
	return out, nil
}
