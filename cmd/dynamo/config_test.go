package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFileConfigIsStrictInEverySection(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := loadFileConfig(write("log: {level: debug}\nscheduler:\n  lease_period: 9s\n  heartbeat: 3s\nregistry:\n  anonymous_read: never\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Registry.AnonymousRead != "never" || cfg.Registry.Listen != "127.0.0.1:8080" {
		t.Errorf("registry section not decoded over its defaults: %+v", cfg.Registry)
	}
	if cfg.Log.Level != "debug" || time.Duration(cfg.Scheduler.LeasePeriod) != 9*time.Second || cfg.Database == "" {
		t.Errorf("sections not decoded or defaults lost: %+v", cfg)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"scheduler:\n  lease_perod: 9s\n", "lease_perod"},
		{"nonsense: 1\n", "nonsense"},
		{"scheduler:\n  lease_period: 1s\n  heartbeat: 5s\n", "scheduler"},
		{"registry:\n  listn: 127.0.0.1:1\n", "listn"},
		{"registry:\n  listen: 0.0.0.0:8080\n", "registry.listen"},
	} {
		if _, err := loadFileConfig(write(bad.yaml)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want it to mention %q", bad.yaml, err, bad.want)
		}
	}
}

func TestComponentSectionsDecodeWithTheirOwnRules(t *testing.T) {
	cfg, err := loadFileConfig("")
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if cfg.Fileop.Backend != "native" || cfg.Consistency != nil || cfg.Projects != nil {
		t.Errorf("defaults: fileop backend %q, consistency %v, projects %v", cfg.Fileop.Backend, cfg.Consistency, cfg.Projects)
	}
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("fileop:\n  backend: gfal2\n  batch_size: 7\n"), 0o644)
	cfg, err = loadFileConfig(p)
	if err != nil || cfg.Fileop.Backend != "gfal2" || cfg.Fileop.BatchSize != 7 || cfg.Fileop.PerLink == 0 {
		t.Fatalf("fileop section: %+v %v (defaults must fill what is not given)", cfg.Fileop, err)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"fileop:\n  backend: carrier-pigeon\n", "fileop"},
		{"fileop:\n  batchsize: 7\n", "batchsize"},
		{"detox:\n  deletion_per_iteration: 7\n", "detox"},
		{"detox:\n  nonsense: 1\n", "nonsense"},
	} {
		os.WriteFile(p, []byte(bad.yaml), 0o644)
		if _, err := loadFileConfig(p); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want it to mention %q", bad.yaml, err, bad.want)
		}
	}
}
