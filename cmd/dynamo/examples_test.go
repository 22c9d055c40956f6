package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example configurations in the repository must stay valid: every key
// known, every section accepted by its component. Paths that only exist on
// a production host are checked by the components at start, not here.
func TestExampleConfigurationsLoad(t *testing.T) {
	for _, f := range []string{"../../examples/embedded.yaml", "../../examples/production.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The production example's partitions file is the host's, checked
		// at load: point it at a partitions file of ours.
		p := f
		if strings.Contains(string(b), "/usr/share/dynamo-policies/partitions.txt") {
			abs, err := filepath.Abs("../../inventory/partitions/testdata/partitions.txt")
			must(t, err)
			b = []byte(strings.ReplaceAll(string(b), "/usr/share/dynamo-policies/partitions.txt", abs))
			p = t.TempDir() + "/c.yaml"
			must(t, os.WriteFile(p, b, 0o644))
		}
		if _, err := loadFileConfig(p); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// The embedded example runs from any working directory (this test's is
// cmd/dynamo): every file it names is found and parses, as serve checks
// before it starts.
func TestEmbeddedExampleFromAnotherDirectory(t *testing.T) {
	var o globalOptions
	o.configPath, o.logFormat, o.logLevel = "../../examples/embedded.yaml", "text", "error"
	o.stderr = io.Discard
	e, err := o.configure()
	must(t, err)
	if _, err := loadServeConfig(e, serveOptions{}); err != nil {
		t.Fatal(err)
	}
}
