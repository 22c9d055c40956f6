package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/config"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/partitions"
)

// env is what most commands need: the configuration, a logger and the
// database, resolved from flags, environment and config file.
type env struct {
	cfg  config.Config
	file fileConfig // every section, including the components'

	log *logrus.Logger
	db  *db.DB
}

// open is configure and openDB: what most commands need.
func (g *globalOptions) open(ctx context.Context, migrate bool) (*env, error) {
	e, err := g.configure()
	if err != nil {
		return nil, err
	}
	if err := e.openDB(ctx, migrate); err != nil {
		return nil, err
	}
	return e, nil
}

// configure reads the configuration and builds the logger; it opens
// nothing, so that `dynamo serve` can check every file and bind every
// listener before it touches the database.
func (g *globalOptions) configure() (*env, error) {
	file, err := loadFileConfig(g.configPath)
	if err != nil {
		return nil, usageError{err}
	}
	cfg := file.Config
	if g.dbDSN != "" {
		cfg.Database = g.dbDSN
	}
	if g.logFormat == "text" && cfg.Log.Format != "" {
		g.logFormat = cfg.Log.Format
	}
	if g.logLevel == "info" && cfg.Log.Level != "" {
		g.logLevel = cfg.Log.Level
	}
	log, err := g.logger()
	if err != nil {
		return nil, usageError{err}
	}
	file.Config = cfg
	return &env{cfg: cfg, file: file, log: log}, nil
}

// openDB opens the configured database and, with migrate, brings its
// schema up to date.
func (e *env) openDB(ctx context.Context, migrate bool) error {
	d, err := db.Open(ctx, e.cfg.Database)
	if err != nil {
		return err
	}
	if migrate {
		applied, err := d.Migrate(ctx)
		if err != nil {
			d.Close()
			return err
		}
		if len(applied) > 0 {
			e.log.WithField("component", "db").WithField("applied", applied).Info("migrated database")
		}
	}
	e.db = d
	return nil
}

func (e *env) loadInventory(ctx context.Context) (*inventory.Store, error) {
	defs, err := e.partitionDefs()
	if err != nil {
		return nil, err
	}
	return e.loadInventoryDefs(ctx, defs)
}

// partitionDefs reads inventory.partitions_file (nil: the default partition).
func (e *env) partitionDefs() ([]inventory.PartitionDef, error) {
	f := e.cfg.Inventory.PartitionsFile
	if f == "" {
		return nil, nil
	}
	defs, err := partitions.Load(f, time.Now())
	if err != nil {
		return nil, usageError{fmt.Errorf("inventory.partitions_file: %w", err)}
	}
	return defs, nil
}

// loadInventoryDefs loads the inventory with the given partitions.
func (e *env) loadInventoryDefs(ctx context.Context, defs []inventory.PartitionDef) (*inventory.Store, error) {
	start := time.Now()
	s, err := inventory.Load(ctx, e.db, e.log.WithField("component", "inventory"), defs, start)
	if err != nil {
		return nil, err
	}
	c := s.Snapshot().Counts()
	e.log.WithFields(logrus.Fields{"component": "inventory", "sites": c.Sites, "datasets": c.Datasets,
		"blocks": c.Blocks, "block_replicas": c.BlockReplicas, "seq": s.Seq(),
		"seconds": time.Since(start).Round(time.Millisecond).Seconds()}).Info("inventory loaded")
	return s, nil
}
