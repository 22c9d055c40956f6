package driver

import (
	"context"
	"errors"
)

// RemoveAll deletes dir and everything below it, depth first, through the
// core interface only (so it works for every driver and never relies on a
// server's recursive DELETE). It holds one directory's entry names in memory
// at a time, because deleting while a listing is still streaming is not
// safe on every backend. A missing dir is not an error.
func RemoveAll(ctx context.Context, d Driver, dir string) error {
	clean, err := CleanPath(dir)
	if err != nil {
		return err
	}
	var files, dirs []string
	err = d.List(ctx, clean, func(e Entry) error {
		p := e.Name
		if clean != "" {
			p = clean + "/" + e.Name
		}
		if e.IsDir {
			dirs = append(dirs, p)
		} else {
			files = append(files, p)
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if errors.Is(err, ErrNotDir) {
		return d.Remove(ctx, clean)
	}
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := d.Remove(ctx, f); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	for _, sub := range dirs {
		if err := RemoveAll(ctx, d, sub); err != nil {
			return err
		}
	}
	if clean == "" {
		return nil // never remove the driver root itself
	}
	if err := d.Rmdir(ctx, clean); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}
