package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/projects"
)

// deliveredAccesses records every file a project delivers as one access
// of its dataset at the project's site, in the table the Dealer's
// popularity and Detox read (detox_accesses). It writes only while this
// server holds the writer lease (mayWrite), as every background writer.
type deliveredAccesses struct {
	d        *db.DB
	store    *inventory.Store
	mayWrite func() error
}

var _ projects.AccessRecorder = deliveredAccesses{}

func (a deliveredAccesses) RecordFileAccess(ctx context.Context, dataset, lfn, site string, at time.Time) error {
	if err := a.mayWrite(); err != nil {
		return err
	}
	if dataset == "" {
		// A project on a list of files: the file's block says its dataset.
		blocks, err := a.store.BlocksOfLFNs(ctx, []string{lfn})
		if err != nil {
			return fmt.Errorf("dataset of %s: %w", lfn, err)
		}
		block, ok := blocks[lfn]
		if !ok {
			return nil // not in the inventory: nothing popularity could use
		}
		snap := a.store.Snapshot()
		b, ok := snap.Block(block)
		if !ok {
			return nil
		}
		ds, ok := snap.Dataset(b.Dataset)
		if !ok {
			return nil
		}
		dataset = ds.Name
	}
	return detox.RecordAccess(ctx, a.d, detox.Access{Dataset: dataset, Site: site, Count: 1, At: at})
}
