package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/testservers"
)

// A configuration naming a file that does not parse, or a port that is
// taken, fails `dynamo serve` before it creates or migrates the database.
func TestServeChecksFilesAndPortsBeforeTheDatabase(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer busy.Close()
	cases := []struct {
		name, yaml, files, want string
	}{
		{"detox policy", "detox:\n  partitions:\n    Default: {policy: bad.txt}\n", "bad.txt", "bad.txt"},
		{"sequences", "scheduler:\n  sequences: bad.seq\n", "bad.seq", "bad.seq"},
		{"partitions", "inventory:\n  partitions_file: parts.txt\n", "parts.txt", "parts.txt"},
		{"enforcer rules", "dealer:\n  plugins:\n    enforcer: {enabled: true, rules_files: [rules.yaml]}\n", "rules.yaml", "rules.yaml"},
		{"busy REST port", "registry:\n  listen: " + busy.Addr().String() + "\n", "", busy.Addr().String()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.files != "" {
				must(t, os.WriteFile(filepath.Join(dir, c.files), []byte("this is not [a valid: file\n"), 0o644))
			}
			cfg := filepath.Join(dir, "dynamo.yaml")
			yaml := "database: sqlite:dynamo.db\n" + c.yaml
			if !strings.Contains(c.yaml, "listen:") {
				yaml += fmt.Sprintf("registry:\n  listen: 127.0.0.1:%d\n", testservers.FreePort(t))
			}
			must(t, os.WriteFile(cfg, []byte(yaml), 0o644))
			_, err := runCLI(t, "--config", cfg, "serve")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error naming %q, got %v", c.want, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "dynamo.db")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the database exists after a failed start (%v)", err)
			}
		})
	}
}

// Relative paths in a configuration file are relative to the file, not to
// the working directory.
func TestConfigPathsRelativeToTheFile(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "etc", "policies"), 0o755))
	cfg := filepath.Join(dir, "etc", "dynamo.yaml")
	must(t, os.WriteFile(cfg, []byte(`database: sqlite:var/dynamo.db
scheduler: {sequences: seq.txt}
detox:
  partitions:
    Default: {policy: policies/default.txt}
storage_elements: []
`), 0o644))
	f, err := loadFileConfig(cfg)
	must(t, err)
	etc := filepath.Join(dir, "etc")
	if want := "sqlite:" + filepath.Join(etc, "var", "dynamo.db"); f.Database != want {
		t.Errorf("database %q, want %q", f.Database, want)
	}
	if want := filepath.Join(etc, "seq.txt"); f.Scheduler.Sequences != want {
		t.Errorf("sequences %q, want %q", f.Scheduler.Sequences, want)
	}
	if want := filepath.Join(etc, "policies", "default.txt"); f.Detox.Partitions["Default"].Policy != want {
		t.Errorf("policy %q, want %q", f.Detox.Partitions["Default"].Policy, want)
	}
	// Without a database key the built-in default stays relative to the
	// working directory.
	must(t, os.WriteFile(cfg, []byte("log: {level: info}\n"), 0o644))
	f, err = loadFileConfig(cfg)
	must(t, err)
	if strings.Contains(f.Database, etc) {
		t.Errorf("default database resolved against the file: %q", f.Database)
	}
}
