package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/srm"
)

// EmbeddedSE is one storage element that `dynamo serve` runs in-process
// (the `storage_elements:` list of the configuration). Everything but Name
// is an ordinary SE configuration (docs/srm.md).
type EmbeddedSE struct {
	// Name identifies the SE in logs; usually the name of the site it serves.
	Name       string `yaml:"name"`
	srm.Config `yaml:",inline"`
}

// buildStorageElements builds every configured SE on the listeners bound
// for it; they run before the rest is up, so that sites served by them are
// reachable when fileop and consistency start. Each SE keeps its request
// database apart (its own db, or a SQLite file beside its first storage
// area): the SE must be the only writer of it.
func (s *server) buildStorageElements(ctx context.Context) error {
	for i := range s.cfg.file.StorageElements {
		se := &s.cfg.file.StorageElements[i]
		log := s.env.log.WithField("component", "srm").WithField("se", se.Name)
		dsn := se.DB
		if dsn == "" {
			if len(se.Areas) == 0 {
				return fmt.Errorf("storage_elements[%d] (%s): no storage areas", i, se.Name)
			}
			root := filepath.Clean(se.Areas[0].Root)
			dsn = "sqlite:" + filepath.Join(filepath.Dir(root), "."+filepath.Base(root)+".dynamo-srm.db")
		}
		d, err := db.Open(ctx, dsn)
		if err != nil {
			return fmt.Errorf("storage_elements[%d] (%s): %w", i, se.Name, err)
		}
		s.seDBs = append(s.seDBs, d)
		if _, err := d.Migrate(ctx); err != nil {
			return fmt.Errorf("storage_elements[%d] (%s): %w", i, se.Name, err)
		}
		srv, err := srm.New(&se.Config, d, log)
		if err != nil {
			return fmt.Errorf("storage_elements[%d] (%s): %w", i, se.Name, err)
		}
		// The SE's metrics also go to the process's /metrics, one label
		// per SE.
		if s.metrics != nil {
			if err := srv.RegisterMetrics(s.metrics, prometheus.Labels{"se": se.Name}); err != nil {
				return fmt.Errorf("storage_elements[%d] (%s): metrics: %w", i, se.Name, err)
			}
		}
		s.storageElements = append(s.storageElements, srv)
	}
	if len(s.storageElements) == 0 {
		return nil
	}
	servers, lns := s.storageElements, s.ln.ses
	s.addRun("storage-elements", func(ctx context.Context) error {
		// One SE failing stops the others, so that serve stops with its
		// error instead of running on without that SE.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errc := make(chan error, len(servers))
		for i, srv := range servers {
			go func() { errc <- srv.Serve(ctx, lns[i].srm, lns[i].data) }()
		}
		var first error
		for range servers {
			if err := <-errc; err != nil && first == nil {
				first = err
				cancel()
			}
		}
		return first
	})
	return nil
}
