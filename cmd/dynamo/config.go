package main

import (
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/config"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
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

	// Sections decoded by their own package (DecodeConfig: yamlconf, its
	// defaults and validation) from these nodes of the file.
	FileopNode      yaml.Node `yaml:"fileop"`
	DetoxNode       yaml.Node `yaml:"detox"`
	ConsistencyNode yaml.Node `yaml:"consistency"`
	ProjectsNode    yaml.Node `yaml:"projects"`

	Fileop      fileop.Config       `yaml:"-"`
	Detox       detox.Config        `yaml:"-"`
	Consistency *consistency.Config `yaml:"-"` // nil: no consistency checks
	Projects    *projects.Config    `yaml:"-"` // nil: projects off
}

// loadFileConfig reads the configuration file at path (empty: defaults
// only). The file is parsed once; every section, the component ones
// included, is decoded from that node tree with yamlconf, so an error
// anywhere names the file, line and column.
func loadFileConfig(path string) (fileConfig, error) {
	if path == "" {
		cfg, err := decodeFileConfig(nil, "")
		if err != nil {
			err = fmt.Errorf("config: %w", err)
		}
		return cfg, err
	}
	f, err := os.Open(path)
	if err != nil {
		return fileConfig{}, fmt.Errorf("config: %w", err)
	}
	root, err := yamlconf.Parse(f)
	f.Close()
	if err != nil {
		return fileConfig{}, yamlconf.InFile(path, err)
	}
	cfg, err := decodeFileConfig(root, filepath.Dir(path))
	return cfg, yamlconf.InFile(path, err)
}

// decodeFileConfig decodes the document root (nil: defaults only); dir is
// the file's directory, which relative paths in it are relative to.
func decodeFileConfig(root *yaml.Node, dir string) (fileConfig, error) {
	cfg := fileConfig{Config: config.Default(), Registry: registry.DefaultConfig(), Dealer: serveDealerDefaults()}
	if err := yamlconf.Decode(root, &cfg); err != nil {
		return cfg, err
	}
	if root != nil {
		cfg.resolvePaths(dir, root)
	}
	if err := cfg.Config.Validate(); err != nil {
		return cfg, err
	}
	if err := cfg.Dealer.Validate(); err != nil {
		return cfg, fmt.Errorf("dealer: %w", err)
	}
	if err := cfg.Registry.Validate(); err != nil {
		return cfg, err
	}
	cfg.Scheduler.ApplyDefaults()
	if err := cfg.Scheduler.Validate(); err != nil {
		return cfg, fmt.Errorf("scheduler: %w", err)
	}
	var err error
	if cfg.Fileop, err = fileop.DecodeConfig(&cfg.FileopNode); err != nil {
		return cfg, err
	}
	if cfg.Detox, err = detox.DecodeConfig(&cfg.DetoxNode); err != nil {
		return cfg, err
	}
	// A consistency: or projects: key turns the component on, even with
	// nothing under it (its defaults).
	if cfg.ConsistencyNode.Kind != 0 {
		c, err := consistency.DecodeConfig(&cfg.ConsistencyNode)
		if err != nil {
			return cfg, err
		}
		cfg.Consistency = &c
	}
	if cfg.ProjectsNode.Kind != 0 {
		c, err := projects.DecodeConfig(&cfg.ProjectsNode)
		if err != nil {
			return cfg, err
		}
		cfg.Projects = &c
	}
	if root != nil {
		cfg.resolveSectionPaths(dir)
	}
	names := map[string]bool{}
	for i := range cfg.StorageElements {
		se := &cfg.StorageElements[i]
		if se.Name == "" || names[se.Name] {
			return cfg, fmt.Errorf("storage_elements[%d]: name missing or used twice", i)
		}
		names[se.Name] = true
		se.ApplyDefaults()
		if err := se.Validate(); err != nil {
			return cfg, fmt.Errorf("storage_elements[%d] (%s): %w", i, se.Name, err)
		}
	}
	return cfg, nil
}
