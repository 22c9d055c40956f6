// Package config is the one typed configuration of a dynamo process: a YAML
// file decoded strictly (unknown keys are errors) over defaults, then
// validated. Every option is documented in docs/configuration.md; a test
// keeps that document and this struct in step.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/internal/db"
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
	// SIGINT/SIGTERM, as a Go duration ("30s").
	ShutdownGrace string `yaml:"shutdown_grace"`
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		Database: db.DefaultDSN,
		Log:      Log{Format: "text", Level: "info"},
		Serve:    Serve{ShutdownGrace: "30s"},
	}
}

// Load reads path over the defaults. An empty path returns the defaults.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := Decode(bytes.NewReader(b), &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Decode decodes YAML strictly into cfg (which holds the defaults) and
// validates the result.
func Decode(r io.Reader, cfg *Config) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return cfg.Validate()
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
	if _, err := parseDuration(c.Serve.ShutdownGrace); err != nil {
		return fmt.Errorf("serve.shutdown_grace: %w", err)
	}
	return nil
}
