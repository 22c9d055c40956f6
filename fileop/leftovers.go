package fileop

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// LeftoverRemover is implemented by backends whose drivers write through
// temporary files (driver.TempPrefix) that a killed process leaves behind.
type LeftoverRemover interface {
	// RemoveLeftovers removes the temporary uploads modified before
	// before from the directories of targets (destination file URLs) and
	// returns how many it removed. It skips directories it cannot list.
	RemoveLeftovers(ctx context.Context, targets []string, before time.Time) (int, error)
}

// RemoveLeftovers implements LeftoverRemover. Only the directories of the
// given targets are listed, not whole sites: those are where an interrupted
// transfer wrote, and a walk of a large site at every start would take
// hours. A file modified at or after before may be another writer's
// upload in progress and is kept, as is one whose driver reports no time.
func (n *Native) RemoveLeftovers(ctx context.Context, targets []string, before time.Time) (int, error) {
	type dirKey struct{ root, dir string }
	seen := map[dirKey]bool{}
	removed := 0
	var errs []error
	for _, target := range targets {
		root, rel, err := driver.SplitURL(target)
		if err != nil {
			continue // a bad URL fails its transfer with a clear error
		}
		k := dirKey{root, path.Dir("/" + rel)}
		if seen[k] {
			continue
		}
		seen[k] = true
		d, _, err := n.open(ctx, target)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var stale []string
		err = d.List(ctx, k.dir, func(e driver.Entry) error {
			if !e.IsDir && driver.IsTemporary(e.Name) && !e.ModTime.IsZero() && e.ModTime.Before(before) {
				stale = append(stale, path.Join(k.dir, e.Name))
			}
			return nil
		})
		if errors.Is(err, driver.ErrNotFound) || errors.Is(err, driver.ErrUnsupported) {
			continue // nothing was written there, or it cannot be listed
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range stale {
			if err := d.Remove(ctx, p); err != nil && !errors.Is(err, driver.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			removed++
		}
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("removing leftover temporary uploads: %w", errors.Join(errs...))
	}
	return removed, nil
}

var _ LeftoverRemover = (*Native)(nil)
