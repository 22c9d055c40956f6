package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/fileop/pfn"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
	"github.com/dynamo-go/dynamo/projects"
	"github.com/dynamo-go/dynamo/srm"
	"github.com/dynamo-go/dynamo/stager"
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

// Every YAML block in docs/ is a configuration someone will copy: it must
// decode, strictly, with the decoder of what it shows. The table says what
// each document's blocks are; a document not in it fails the test, so a
// new one gets classified. Blocks showing a whole file (or sections of it)
// are loaded as a configuration file; standalone section files with their
// component's decoder. SE blocks name host directories, so they are only
// decoded (strictly), not validated. A line holding only "..." elides.
func TestDocumentedConfigurationsDecode(t *testing.T) {
	kinds := map[string]string{
		"api.md": "file", "configuration.md": "file", "consistency.md": "file", "dealer.md": "file",
		"detox.md": "file", "scheduler.md": "file", "drivers.md": "pfn", "fileop.md": "fileop",
		"projects.md": "projects", "srm.md": "srm", "delegation.md": "stager", "metrics.md": "not dynamo's (Prometheus rules)",
	}
	docs, err := filepath.Glob("../../docs/*.md")
	must(t, err)
	fence := regexp.MustCompile("(?m)^( *)```yaml\n((?s:.*?))^ *```")
	blocks := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		must(t, err)
		for _, m := range fence.FindAllStringSubmatch(string(b), -1) {
			name := filepath.Base(doc)
			kind, ok := kinds[name]
			if !ok {
				t.Errorf("%s has a yaml block: say in this test what it is", name)
				continue
			}
			var lines []string
			for _, l := range strings.Split(m[2], "\n") {
				if strings.TrimSpace(l) != "..." {
					lines = append(lines, strings.TrimPrefix(l, m[1]))
				}
			}
			text := strings.Join(lines, "\n")
			p := filepath.Join(t.TempDir(), name+".yaml")
			must(t, os.WriteFile(p, []byte(text), 0o644))
			blocks++
			switch kind {
			case "file":
				_, err = loadFileConfig(p)
			case "fileop":
				_, err = yamlconf.Load(p, fileop.DecodeConfig)
			case "projects":
				_, err = yamlconf.Load(p, projects.DecodeConfig)
			case "stager":
				_, err = yamlconf.Load(p, stager.DecodeConfig)
			case "pfn":
				_, err = yamlconf.Load(p, func(n *yaml.Node) (*pfn.Mapper, error) {
					var c pfn.Config
					if err := yamlconf.Decode(n, &c); err != nil {
						return nil, err
					}
					return pfn.Compile("doc", c)
				})
			case "srm":
				_, err = yamlconf.Load(p, func(n *yaml.Node) (srm.Config, error) {
					var c srm.Config
					return c, yamlconf.Decode(n, &c)
				})
			default:
				continue
			}
			if err != nil {
				t.Errorf("%s block:\n%s\n%v", name, text, err)
			}
		}
	}
	if blocks < 10 {
		t.Fatalf("found %d yaml blocks in docs/: is the fence pattern still right?", blocks)
	}
}
