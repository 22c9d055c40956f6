package main

import (
	"context"
	"fmt"
	"path/filepath"

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

func init() {
	registerServeComponent(serveComponent{name: "storage-elements", order: 5, setup: setupEmbeddedSEs})
}

// setupEmbeddedSEs starts every configured SE before the rest, so that
// sites served by them are reachable when fileop and consistency start.
// Each SE keeps its request database apart (its own db, or a SQLite file
// beside its first storage area): the SE must be the only writer of it.
func setupEmbeddedSEs(ctx context.Context, s *serveEnv) (func(context.Context) error, error) {
	var servers []*srm.Server
	for i := range s.env.file.StorageElements {
		se := &s.env.file.StorageElements[i]
		log := s.env.log.WithField("component", "srm").WithField("se", se.Name)
		dsn := se.DB
		if dsn == "" {
			if len(se.Areas) == 0 {
				return nil, fmt.Errorf("storage_elements[%d] (%s): no storage areas", i, se.Name)
			}
			root := filepath.Clean(se.Areas[0].Root)
			dsn = "sqlite:" + filepath.Join(filepath.Dir(root), "."+filepath.Base(root)+".dynamo-srm.db")
		}
		d, err := db.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("storage_elements[%d] (%s): %w", i, se.Name, err)
		}
		if _, err := d.Migrate(ctx); err != nil {
			return nil, fmt.Errorf("storage_elements[%d] (%s): %w", i, se.Name, err)
		}
		srv, err := srm.New(&se.Config, d, log)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("storage_elements[%d] (%s): %w", i, se.Name, err)
		}
		servers = append(servers, srv)
	}
	if len(servers) == 0 {
		return nil, nil
	}
	s.shared["storage-elements"] = servers
	return func(ctx context.Context) error {
		errc := make(chan error, len(servers))
		for _, srv := range servers {
			go func() { errc <- srv.Run(ctx) }()
		}
		var first error
		for range servers {
			if err := <-errc; err != nil && first == nil {
				first = err
			}
		}
		return first
	}, nil
}
