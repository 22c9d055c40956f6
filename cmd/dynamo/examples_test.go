package main

import (
	"os"
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
		// The embedded example's policy path is relative to the repository;
		// the production example's partitions file is the host's, checked at
		// load: point it at a partitions file of ours.
		b = []byte(strings.NewReplacer("examples/detox-default.txt", "../../examples/detox-default.txt",
			"/usr/share/dynamo-policies/partitions.txt", "../../inventory/partitions/testdata/partitions.txt").Replace(string(b)))
		p := t.TempDir() + "/c.yaml"
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadFileConfig(p); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
