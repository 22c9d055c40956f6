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

func (g *globalOptions) open(ctx context.Context, migrate bool) (*env, error) {
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
	d, err := db.Open(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	if migrate {
		applied, err := d.Migrate(ctx)
		if err != nil {
			d.Close()
			return nil, err
		}
		if len(applied) > 0 {
			log.WithField("component", "db").WithField("applied", applied).Info("migrated database")
		}
	}
	file.Config = cfg
	return &env{cfg: cfg, file: file, log: log, db: d}, nil
}

func (e *env) loadInventory(ctx context.Context) (*inventory.Store, error) {
	start := time.Now()
	var defs []inventory.PartitionDef
	if f := e.cfg.Inventory.PartitionsFile; f != "" {
		var err error
		if defs, err = partitions.Load(f, start); err != nil {
			return nil, usageError{fmt.Errorf("inventory.partitions_file: %w", err)}
		}
	}
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
