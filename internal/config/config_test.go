package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

func TestBadConfigs(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"databse: sqlite:x.db\n", "1:1: databse: unknown key"},
		{"database: postgres://x\n", "database:"},
		{"log: {format: xml}\n", "log.format"},
		{"log: {level: loud}\n", "log.level"},
		{"serve: {shutdown_grace: soon}\n", `1:25: serve.shutdown_grace: "soon" is not a duration`},
		{"serve: {shutdown_grace: -1s}\n", "negative"},
		{"serve: {shutdown_grace: 30}\n", "needs a unit"},
		{"serve: {sample_inventory: maybe}\n", "1: cannot unmarshal !!str `maybe` into bool"},
	} {
		_, err := yamlconf.Read(strings.NewReader(tc.yaml), DecodeConfig)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.yaml, err, tc.want)
		}
	}
}

func TestGoodConfigAndDefaults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("database: mysql://u:p@127.0.0.1:3306/dynamo\nlog:\n  level: debug\n"), 0o644)
	cfg, err := yamlconf.Load(p, DecodeConfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database != "mysql://u:p@127.0.0.1:3306/dynamo" || cfg.Log.Level != "debug" || cfg.Log.Format != "text" || cfg.Serve.ShutdownGrace != 30*time.Second {
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
