package yamlconf

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type common struct {
	Enabled bool `yaml:"enabled"`
}

type leaf struct {
	common `yaml:",inline"`
	Every  time.Duration `yaml:"every"`
	Names  []string      `yaml:"names"`
}

type section struct {
	Interval time.Duration   `yaml:"interval"`
	Sites    map[string]leaf `yaml:"sites"`
	List     []leaf          `yaml:"list"`
	Ptr      *leaf           `yaml:"ptr"`
	Raw      yaml.Node       `yaml:"raw"`
	Any      any             `yaml:"any"`
	Default  int
	skipped  int //nolint:unused // unexported fields take no key
}

type root struct {
	Other   string    `yaml:"other"`
	Section yaml.Node `yaml:"section"`
}

// decodeSection parses a whole document and decodes its section: node
// the way the main configuration does, so positions are the file's.
func decodeSection(t *testing.T, doc string) (section, error) {
	t.Helper()
	n, err := Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	var r root
	if err := Decode(n, &r); err != nil {
		t.Fatal(err)
	}
	s := section{Interval: time.Minute}
	return s, Decode(&r.Section, &s)
}

func TestDecodeStrictWithFilePositions(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      string // "line:col: text"
	}{
		{"top key", "other: x\nsection:\n  intervall: 5s\n", "3:3: intervall: unknown key (known here: any, default, interval, list, ptr, raw, sites)"},
		{"map value", "other: x\n\nsection:\n  sites:\n    A: {every: 1s}\n    B:\n      evry: 1s\n", "7:7: sites.B.evry: unknown key"},
		{"inline struct keys are known, others not", "section:\n  list:\n  - {enabled: true}\n  - {enabled: true, on: false}\n", "4:21: list[1].on: unknown key"},
		{"pointer", "section:\n  ptr: {every: 1s, x: 1}\n", "2:20: ptr.x: unknown key"},
		{"merge key", "base: &b {evry: 1s}\nsection:\n  ptr:\n    <<: *b\n", "1:11: ptr.evry: unknown key"},
		{"bare number duration", "section:\n  interval: 90\n", `2:13: interval: "90" needs a unit`},
		{"negative duration", "section:\n  sites: {A: {every: -1s}}\n", `2:22: sites.A.every: "-1s" is negative`},
		{"not a duration", "section:\n  interval: soon\n", `2:13: interval: "soon" is not a duration`},
		{"type error from yaml keeps the file line", "other: x\nsection:\n  default: [1]\n", "3: cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeSectionLoose(t, tc.doc)
			if err == nil {
				t.Fatalf("accepted %q", tc.doc)
			}
			if got := InFile("c.yaml", err).Error(); !strings.Contains(got, "c.yaml:"+tc.want) {
				t.Fatalf("error %q, want it to contain %q", got, "c.yaml:"+tc.want)
			}
		})
	}
}

// decodeSectionLoose is decodeSection for documents with keys the root
// does not know (the merge-key anchor).
func decodeSectionLoose(t *testing.T, doc string) (section, error) {
	t.Helper()
	n, err := Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	s := section{Interval: time.Minute}
	return s, Decode(Lookup(n, "section"), &s)
}

func TestDecodeGood(t *testing.T) {
	s, err := decodeSection(t, `
other: x
section:
  sites:
    A: {enabled: true, every: 1h30m, names: [a, b]}
  list: [{every: 0}]
  raw: {whatever: [1, 2]}
  any: {x: 1}
  default: 3
`)
	if err != nil {
		t.Fatal(err)
	}
	if s.Interval != time.Minute {
		t.Errorf("interval %v: the value held before decoding should stay", s.Interval)
	}
	if a := s.Sites["A"]; !a.Enabled || a.Every != 90*time.Minute || len(a.Names) != 2 {
		t.Errorf("sites.A = %+v", a)
	}
	if len(s.List) != 1 || s.List[0].Every != 0 || s.Default != 3 || s.Raw.Kind != yaml.MappingNode {
		t.Errorf("decoded %+v", s)
	}
}

func TestAbsentSectionKeepsDefaults(t *testing.T) {
	for _, doc := range []string{"", "other: x\n", "section:\n", "section: ~\n"} {
		n, err := Parse(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		s := section{Default: 7}
		if err := Decode(Lookup(n, "section"), &s); err != nil || s.Default != 7 {
			t.Errorf("%q: %v, %+v", doc, err, s)
		}
	}
}

func TestParseRefusesASecondDocument(t *testing.T) {
	_, err := Parse(strings.NewReader("a: 1\n---\nb: 2\n"))
	if err == nil || !strings.Contains(err.Error(), "2:1: a second YAML document") {
		t.Fatalf("err = %v", err)
	}
	_, err = Parse(strings.NewReader("a: [1\n"))
	var e *Error
	if !errors.As(err, &e) || e.Line == 0 {
		t.Fatalf("syntax error without a line: %v", err)
	}
}

func TestInFileWithoutPosition(t *testing.T) {
	if got := InFile("c.yaml", errors.New("bad")).Error(); got != "c.yaml: bad" {
		t.Fatal(got)
	}
	if InFile("c.yaml", nil) != nil {
		t.Fatal("nil error grew a file")
	}
}

func TestParseDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{"0": 0, "90s": 90 * time.Second, "1h30m": 90 * time.Minute, "250ms": 250 * time.Millisecond} {
		if d, err := ParseDuration(s); err != nil || d != want {
			t.Errorf("%q = %v, %v", s, d, err)
		}
	}
	for _, s := range []string{"", "90", "1.5", "-1s", "1d", "soon"} {
		if _, err := ParseDuration(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// Components wrap decode errors (fmt.Errorf fixes the message when it is
// made); InFile must still show the file, and keep the chain for errors.Is.
func TestInFileThroughWrappers(t *testing.T) {
	sentinel := errors.New("bad fileop configuration")
	n, err := Parse(strings.NewReader("section:\n  nope: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	var s section
	err = fmt.Errorf("%w: %w", sentinel, Decode(Lookup(n, "section"), &s))
	err = InFile("c.yaml", errors.Join(err, &Error{Line: 9, Msg: "another"}))
	for _, want := range []string{"bad fileop configuration: c.yaml:2:3: nope: unknown key", "c.yaml:9: another"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not contain %q", err, want)
		}
	}
	if !errors.Is(err, sentinel) {
		t.Error("the wrapped sentinel is lost")
	}
}

// FuzzDecode: any document decodes into a configuration struct (every
// shape yamlconf walks: inline, maps, lists, pointers, raw nodes,
// durations) or fails with errors that carry a message, and a position
// when they are about a key or a value; never a panic. A document that
// decodes encodes to one that decodes to the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"other: x\nsection:\n  interval: 1h30m\n  sites:\n    A: {enabled: true, every: 0, names: [a]}\n  list: [{every: 90s}]\n  ptr: {every: 1s}\n  raw: [1, {x: y}]\n  default: 3\n",
		"section:\n  intervall: 5s\n",
		"section:\n  interval: 90\n  sites: {A: {every: -1s}}\n",
		"base: &b {every: 1s}\nsection:\n  ptr:\n    <<: *b\n",
		"a: 1\n---\nb: 2\n",
		"section: [1, 2]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		n, err := Parse(strings.NewReader(doc))
		if err != nil {
			checkErrors(t, err)
			return
		}
		var s section
		if err := Decode(Lookup(n, "section"), &s); err != nil {
			checkErrors(t, err)
			return
		}
		out, err := yaml.Marshal(s)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		n2, err := Parse(strings.NewReader(string(out)))
		if err != nil {
			t.Fatalf("encoded value %q does not parse: %v", out, err)
		}
		var s2 section
		if err := Decode(n2, &s2); err != nil {
			t.Fatalf("encoded value %q does not decode: %v", out, err)
		}
		if out2, _ := yaml.Marshal(s2); string(out2) != string(out) {
			t.Fatalf("round trip changed the value:\n%s\n%s", out, out2)
		}
	})
}

func checkErrors(t *testing.T, err error) {
	t.Helper()
	found := positioned(err, nil)
	if len(found) == 0 {
		t.Fatalf("error %q (%T) is not a yamlconf error", err, err)
	}
	for _, e := range found {
		if e.Msg == "" {
			t.Fatalf("error without a message: %+v", e)
		}
	}
}
