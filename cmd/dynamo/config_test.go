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
		{"detox:\n  plan_workers: -1\n", "detox.plan_workers -1"},
	} {
		os.WriteFile(p, []byte(bad.yaml), 0o644)
		if _, err := loadFileConfig(p); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want it to mention %q", bad.yaml, err, bad.want)
		}
	}
}

// Whatever section holds the mistake, the error names the configuration
// file and the line and column in that file (not in the section).
func TestConfigErrorsNameTheFileLine(t *testing.T) {
	const head = "# dynamo\nlog: {level: info}\n\n" // the section starts on line 4
	p := filepath.Join(t.TempDir(), "c.yaml")
	for _, tc := range []struct{ section, want string }{
		{"serve:\n  shutdown_grac: 1m\n", "5:3: serve.shutdown_grac: unknown key"},
		{"serve:\n  shutdown_grace: 90\n", `5:19: serve.shutdown_grace: "90" needs a unit`},
		{"inventory:\n  partition_file: x\n", "5:3: inventory.partition_file: unknown key"},
		{"scheduler:\n  lease_perod: 9s\n", "5:3: scheduler.lease_perod: unknown key"},
		{"scheduler:\n  cron:\n    - {app: dealer, schedule: '@daily', jitter: -1m}\n", `6:49: scheduler.cron[0].jitter: "-1m" is negative`},
		{"registry:\n  db_timeout: soon\n", `5:15: registry.db_timeout: "soon" is not a duration`},
		{"registry:\n  tls: {cert: a, kee: b}\n", "5:18: registry.tls.kee: unknown key"},
		{"dealer:\n  plugins:\n    popularity: {half_lif: 1h}\n", "6:18: dealer.plugins.popularity.half_lif: unknown key"},
		{"dealer:\n  max_cycle_volume: lots\n", `5:21: "lots" is not a size`},
		{"storage_elements:\n  - name: se\n    listn: ':1'\n", "6:5: storage_elements[0].listn: unknown key"},
		{"fileop:\n  batch_size: 10\n  intervall: 5s\n", "6:3: intervall: unknown key"},
		{"fileop:\n  native: {timeout: 5}\n", `5:21: native.timeout: "5" needs a unit`},
		{"detox:\n  partitions:\n    Physics:\n      polcy: x.txt\n", "7:7: partitions.Physics.polcy: unknown key"},
		{"consistency:\n  min_age: 2d\n", `5:12: min_age: "2d" is not a duration`},
		{"consistency:\n  sites:\n    T2_A: {paths: [/store], url: x, concurency: 2}\n", "6:37: sites.T2_A.concurency: unknown key"},
		{"projects:\n  tick: 5\n", `5:9: tick: "5" needs a unit`},
		{"projects:\n  stager:\n    backof_start: 1s\n", "6:5: stager.backof_start: unknown key"},
		{"projects:\n  estimator:\n    freshness: -1m\n", `6:16: estimator.freshness: "-1m" is negative`},
	} {
		if err := os.WriteFile(p, []byte(head+tc.section), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := loadFileConfig(p)
		if err == nil || !strings.Contains(err.Error(), p+":"+tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.section, err, p+":"+tc.want)
		}
	}
}
