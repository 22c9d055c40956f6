package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestBadConfigs(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"databse: sqlite:x.db\n", "field databse not found"},
		{"database: postgres://x\n", "database:"},
		{"log: {format: xml}\n", "log.format"},
		{"log: {level: loud}\n", "log.level"},
		{"serve: {shutdown_grace: soon}\n", "serve.shutdown_grace"},
		{"serve: {shutdown_grace: -1s}\n", "negative"},
		{"serve: {sample_inventory: maybe}\n", "line 1"},
	} {
		cfg := Default()
		err := Decode(strings.NewReader(tc.yaml), &cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.yaml, err, tc.want)
		}
	}
}

func TestGoodConfigAndDefaults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("database: mysql://u:p@127.0.0.1:3306/dynamo\nlog:\n  level: debug\n"), 0o644)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database != "mysql://u:p@127.0.0.1:3306/dynamo" || cfg.Log.Level != "debug" || cfg.Log.Format != "text" || cfg.Serve.Grace().Seconds() != 30 {
		t.Errorf("got %+v", cfg)
	}
}

// Every yaml key of the Config struct must be documented.
func TestEveryOptionDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile("config.go")
	for _, m := range regexp.MustCompile("yaml:\"([a-z_]+)\"").FindAllStringSubmatch(string(src), -1) {
		if !strings.Contains(string(doc), "`"+m[1]+"`") {
			t.Errorf("option %s is not documented in docs/configuration.md", m[1])
		}
	}
}
