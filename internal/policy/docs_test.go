package policy

import (
	"os"
	"strings"
	"testing"
)

// TestDocsListEveryVariable keeps docs/policy-language.md in step with the
// catalog: every variable and alias must be documented with its type.
func TestDocsListEveryVariable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/policy-language.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, v := range Variables() {
		row := "| `" + v.Name + "` | " + v.Type.String()
		if !strings.Contains(text, row) {
			t.Errorf("docs: no row starting %q", row)
		}
		if v.Producer != "" && !strings.Contains(text, "| "+v.Producer+" |") {
			t.Errorf("docs: producer %s of %s not shown", v.Producer, v.Name)
		}
	}
	for a := range Aliases() {
		if !strings.Contains(text, "`"+a+"`") {
			t.Errorf("docs: alias %s missing", a)
		}
	}
}
