package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// The consistency checker acts through the file-operation queue: missing
// or corrupt files become transfers to the site (the daemon picks a source
// and replaces a corrupt copy), orphans become deletions of files outside
// the inventory, and files with a live subscription count as in flight.
func init() {
	consistencyActions = func(e *env) (consistency.Actions, error) { return fileopActions{db: e.db}, nil }
}

type fileopActions struct{ db *db.DB }

var _ consistency.Actions = fileopActions{}

func (a fileopActions) siteID(ctx context.Context, name string) (inventory.SiteID, error) {
	var id int32
	if err := a.db.GetContext(ctx, &id, "SELECT id FROM sites WHERE name = ?", name); err != nil {
		return 0, fmt.Errorf("site %s: %w", name, err)
	}
	return inventory.SiteID(id), nil
}

func (a fileopActions) QueueTransfers(ctx context.Context, site string, files []consistency.Transfer) error {
	id, err := a.siteID(ctx, site)
	if err != nil || len(files) == 0 {
		return err
	}
	reqs := make([]fileop.Request, 0, len(files))
	for _, f := range files {
		reqs = append(reqs, fileop.Request{Op: fileop.OpTransfer, Site: id, File: inventory.File{
			ID: inventory.FileID(f.FileID), Block: inventory.BlockID(f.BlockID), LFN: f.LFN, Size: f.Size, Adler32: f.Adler32}})
	}
	_, err = fileop.EnqueueTx(ctx, a.db, time.Now(), reqs)
	return err
}

func (a fileopActions) QueueDeletions(ctx context.Context, site string, files []consistency.Deletion) error {
	id, err := a.siteID(ctx, site)
	if err != nil || len(files) == 0 {
		return err
	}
	reqs := make([]fileop.Request, 0, len(files))
	for _, f := range files {
		// No file or block id: a file outside the inventory.
		reqs = append(reqs, fileop.Request{Op: fileop.OpDeletion, Site: id, File: inventory.File{LFN: f.LFN, Size: f.Size}})
	}
	_, err = fileop.EnqueueTx(ctx, a.db, time.Now(), reqs)
	return err
}

func (a fileopActions) InFlight(ctx context.Context, site string) (map[string]struct{}, error) {
	id, err := a.siteID(ctx, site)
	if err != nil {
		return nil, err
	}
	return fileop.InFlight(ctx, a.db, id)
}
