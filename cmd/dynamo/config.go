package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/config"
	"github.com/dynamo-go/dynamo/projects"
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

	// Sections decoded by their own package (strictly, with its defaults
	// and validation), kept raw here until then.
	FileopNode      yaml.Node `yaml:"fileop"`
	DetoxNode       yaml.Node `yaml:"detox"`
	ConsistencyNode yaml.Node `yaml:"consistency"`
	ProjectsNode    yaml.Node `yaml:"projects"`

	Fileop      fileop.Config       `yaml:"-"`
	Detox       detox.Config        `yaml:"-"`
	Consistency *consistency.Config `yaml:"-"` // nil: no consistency checks
	Projects    *projects.Config    `yaml:"-"` // nil: projects off
}

// section re-encodes a raw section and hands it to its package's decoder,
// so that each component keeps its own defaults, strictness and checks.
// An absent section decodes from an empty document (the defaults).
func section[T any](name string, n *yaml.Node, decode func(io.Reader) (T, error)) (T, error) {
	var b []byte
	if n.Kind != 0 {
		var err error
		if b, err = yaml.Marshal(n); err != nil {
			var zero T
			return zero, fmt.Errorf("%s: %w", name, err)
		}
	}
	v, err := decode(bytes.NewReader(b))
	if err != nil {
		return v, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

// loadFileConfig reads path (empty: defaults only).
func loadFileConfig(path string) (fileConfig, error) {
	cfg := fileConfig{Config: config.Default(), Registry: registry.DefaultConfig(), Dealer: serveDealerDefaults()}
	var root yaml.Node
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
		_ = yaml.Unmarshal(b, &root) // decoded strictly above; only the keys present are wanted
		cfg.resolvePaths(filepath.Dir(path), &root)
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
	var err error
	if cfg.Fileop, err = section("fileop", &cfg.FileopNode, fileop.LoadConfig); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.Detox, err = section("detox", &cfg.DetoxNode, detox.DecodeConfig); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.ConsistencyNode.Kind != 0 {
		c, err := section("consistency", &cfg.ConsistencyNode, consistency.DecodeConfig)
		if err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		cfg.Consistency = &c
	}
	if cfg.ProjectsNode.Kind != 0 {
		c, err := section("projects", &cfg.ProjectsNode, projects.DecodeConfig)
		if err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		cfg.Projects = &c
	}
	if path != "" {
		cfg.resolveSectionPaths(filepath.Dir(path))
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
