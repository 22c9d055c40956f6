// Package config holds the base sections of a dynamo configuration
// (database, log, serve, inventory); cmd/dynamo composes them with every
// component's section into the one configuration file, decoded with
// internal/yamlconf. Every option is documented in docs/configuration.md; a test
// keeps that document and this struct in step.
package config

import (
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

// Config is the whole configuration.
type Config struct {
	// Database is the DSN: sqlite:PATH or mysql://USER:PASS@HOST:PORT/DB.
	// The --db flag and DYNAMO_DB override it.
	Database  string    `yaml:"database"`
	Log       Log       `yaml:"log"`
	Serve     Serve     `yaml:"serve"`
	Inventory Inventory `yaml:"inventory"`
}

// Inventory configures the in-memory inventory.
type Inventory struct {
	// PartitionsFile is a Dynamo partitions file ("Name: condition" and
	// "Name: [Sub1, Sub2]" lines). Empty: one partition, Default, holding
	// every replica that has an owner.
	PartitionsFile string `yaml:"partitions_file"`
}

// Log configures logging.
type Log struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn, error
}

// Serve configures `dynamo serve`.
type Serve struct {
	// SampleInventory injects a small built-in inventory when the database
	// holds no sites, so a fresh install has something to look at.
	SampleInventory bool `yaml:"sample_inventory"`
	// ShutdownGrace bounds how long running work may take to finish after
	// SIGINT/SIGTERM.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		Database: db.DefaultDSN,
		Log:      Log{Format: "text", Level: "info"},
		Serve:    Serve{ShutdownGrace: 30 * time.Second},
	}
}

// DecodeConfig decodes the base sections from the configuration's node
// (see yamlconf: strict, positions of the file) over the defaults and
// validates them. A nil node gives the defaults.
func DecodeConfig(n *yaml.Node) (Config, error) {
	cfg := Default()
	if err := yamlconf.Decode(n, &cfg); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// Validate checks every option and says which one is wrong.
func (c *Config) Validate() error {
	if _, _, err := db.ParseDSN(c.Database); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format %q: want text or json", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "warning", "error":
	default:
		return fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Inventory.PartitionsFile != "" {
		if _, err := os.Stat(c.Inventory.PartitionsFile); err != nil {
			return fmt.Errorf("inventory.partitions_file: %w", err)
		}
	}
	return nil
}
