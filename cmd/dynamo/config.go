package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/internal/config"
	"github.com/dynamo-go/dynamo/registry"
	"github.com/dynamo-go/dynamo/scheduler"
)

// fileConfig is the whole configuration file: the base sections of
// internal/config inline, plus one typed section per component. It lives
// here, at the composition root, so that internal/config never imports the
// components. Decoding is strict across all sections (an unknown key
// anywhere is an error) and every section is validated at load.
type fileConfig struct {
	config.Config `yaml:",inline"`
	Scheduler     scheduler.Config `yaml:"scheduler"`
	Registry      registry.Config  `yaml:"registry"`
	Dealer        dealer.Config    `yaml:"dealer"`
	// StorageElements are SRM storage elements run inside `dynamo serve`.
	StorageElements []EmbeddedSE `yaml:"storage_elements"`
}

// loadFileConfig reads path (empty: defaults only).
func loadFileConfig(path string) (fileConfig, error) {
	cfg := fileConfig{Config: config.Default(), Registry: registry.DefaultConfig(), Dealer: dealer.DefaultConfig()}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := cfg.Config.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.Dealer.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: dealer: %w", path, err)
	}
	if err := cfg.Registry.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.Scheduler.ApplyDefaults()
	if err := cfg.Scheduler.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: scheduler: %w", path, err)
	}
	names := map[string]bool{}
	for i := range cfg.StorageElements {
		se := &cfg.StorageElements[i]
		if se.Name == "" || names[se.Name] {
			return cfg, fmt.Errorf("config %s: storage_elements[%d]: name missing or used twice", path, i)
		}
		names[se.Name] = true
		se.ApplyDefaults()
		if err := se.Validate(); err != nil {
			return cfg, fmt.Errorf("config %s: storage_elements[%d] (%s): %w", path, i, se.Name, err)
		}
	}
	return cfg, nil
}
