package scheduler

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// A Dynamo production file (cms.seq style) parses, and maps script paths
// to application names.
func TestParseSequencesDynamoFile(t *testing.T) {
	src := `# production-style
<detox> = $(DYNAMO_BASE)/exec/detox
<dealer> = $(DYNAMO_BASE)/exec/dealer
{fom} = fom --verbose
{update_popularity} = popularity

[SEQUENCE detox]
| {update_popularity} --config /etc/dynamo/updater_config.json --crabaccess
& <detox> --config /etc/dynamo/detox_config.json --policy $(POLICIES)/detox/Physics.txt
& {detox} --policy "/with space/DataOps.txt" --test-run
WAIT 14400

[SEQUENCE dealer] restart
^ [2] <dealer> --config /etc/dynamo/dealer_config.json
^[0.5] <dealer> --config /etc/dynamo/dealer_relval_config.json
WAIT 4*450

[SEQUENCE fom]
| [90s] {fom}
WAIT 1m
TERMINATE
`
	f, err := ParseSequences(strings.NewReader(src), "cms.seq", env(map[string]string{"POLICIES": "/usr/share/dynamo-policies"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Sequences) != 3 {
		t.Fatalf("%d sequences", len(f.Sequences))
	}
	d := f.Sequences[0]
	want := []Step{
		{Line: 8, Kind: StepRun, OnFail: FailContinue, Title: "update_popularity", App: "popularity",
			Args: []string{"--config", "/etc/dynamo/updater_config.json", "--crabaccess"}},
		{Line: 9, Kind: StepRun, OnFail: FailRepeat, Title: "detox", Write: true, App: "detox",
			Args: []string{"--config", "/etc/dynamo/detox_config.json", "--policy", "/usr/share/dynamo-policies/detox/Physics.txt"}},
		{Line: 10, Kind: StepRun, OnFail: FailRepeat, Title: "detox", Write: false, App: "detox",
			Args: []string{"--policy", "/with space/DataOps.txt", "--test-run"}},
		{Line: 11, Kind: StepWait, Wait: 4 * time.Hour},
	}
	if d.Name != "detox" || d.Restart || !reflect.DeepEqual(d.Steps, want) {
		t.Fatalf("detox sequence:\n got %+v\nwant %+v", d.Steps, want)
	}
	dl := f.Sequences[1]
	if !dl.Restart || dl.Steps[0].Timeout != 2*time.Hour || dl.Steps[1].Timeout != 30*time.Minute ||
		dl.Steps[0].OnFail != FailRestart || dl.Steps[2].Wait != 1800*time.Second {
		t.Fatalf("dealer sequence: %+v", dl)
	}
	fom := f.Sequences[2]
	if fom.Steps[0].Timeout != 90*time.Second || !reflect.DeepEqual(fom.Steps[0].Args, []string{"--verbose"}) ||
		fom.Steps[1].Wait != time.Minute || fom.Steps[2].Kind != StepTerminate {
		t.Fatalf("fom sequence: %+v", fom.Steps)
	}
}

// Bad files are rejected with every problem and its line number.
func TestParseSequencesErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string // "line: substring"
	}{
		{"step before header", "{a} = noop\n| {a}\n", []string{"2: \"| {a}\" before any [SEQUENCE"}},
		{"undefined title", "[SEQUENCE s]\n| {missing}\nWAIT 1\n", []string{"2: title \"missing\" is not defined"}},
		{"write step on read-only title", "{a} = noop\n[SEQUENCE s]\n^ <a>\n", []string{"3: <a> runs write-enabled but line 1 defines it read-only"}},
		{"bad wait", "{a} = noop\n[SEQUENCE s]\n| {a}\nWAIT soon\n", []string{"4: WAIT soon: not a number"}},
		{"negative wait", "{a} = noop\n[SEQUENCE s]\n| {a}\nWAIT -5\n", []string{"4: WAIT -5: out of range"}},
		{"bad timeout", "{a} = noop\n[SEQUENCE s]\n| [x] {a}\n", []string{"3: timeout [x]"}},
		{"zero timeout", "{a} = noop\n[SEQUENCE s]\n| [0] {a}\n", []string{"3: timeout [0]"}},
		{"garbage line", "{a} = noop\n[SEQUENCE s]\n| {a}\nRUN a\n", []string{"4: cannot parse \"RUN a\""}},
		{"bad option", "{a} = noop\n[SEQUENCE s] forever\n| {a}\n", []string{"2: unknown sequence option \"forever\""}},
		{"duplicate def", "{a} = noop\n<a> = noop-writer\n[SEQUENCE s]\n| {a}\n", []string{"2: title \"a\" already defined at line 1"}},
		{"duplicate sequence", "{a} = noop\n[SEQUENCE s]\n| {a}\n[SEQUENCE s]\n| {a}\n", []string{"4: sequence \"s\" already defined at line 2"}},
		{"empty sequence", "[SEQUENCE s]\n", []string{"1: sequence \"s\" has no steps"}},
		{"busy loop", "[SEQUENCE s]\nWAIT 0\n", []string{"1: sequence \"s\" runs no application and never terminates"}},
		{"unset env", "{a} = noop\n[SEQUENCE s]\n| {a} $(NOPE)/x\n", []string{"3: environment variable NOPE is not set"}},
		{"unterminated quote", "{a} = noop\n[SEQUENCE s]\n| {a} 'x\n", []string{"3: unterminated ' quote"}},
		{"empty definition", "{a} =\n[SEQUENCE s]\nTERMINATE\n", []string{"1: definition of {a} names no application"}},
		{"several at once", "{a} = noop\n[SEQUENCE s]\n| {b}\nWAIT x\n& <a>\n", []string{
			"3: title \"b\" is not defined", "4: WAIT x", "5: <a> runs write-enabled"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSequences(strings.NewReader(c.src), "bad.seq", env(nil))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *ParseError", err)
			}
			if len(pe.Errs) != len(c.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(pe.Errs), len(c.want), err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), "bad.seq:"+w) {
					t.Errorf("error does not contain %q:\n%v", "bad.seq:"+w, err)
				}
			}
		})
	}
}

// Check against the registered applications, with line numbers.
func TestSequenceCheckAgainstApps(t *testing.T) {
	src := "<w> = noop\n{x} = unknown-app\n<y> = noop-writer\n[SEQUENCE s]\n| {w}\n| {x}\n| <y>\n"
	f, err := ParseSequences(strings.NewReader(src), "f.seq", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	apps := map[string]App{"noop": {Name: "noop"}, "noop-writer": {Name: "noop-writer", Writer: true}}
	err = f.Check(func(n string) (App, bool) { a, ok := apps[n]; return a, ok }, "f.seq")
	if err == nil || !strings.Contains(err.Error(), "f.seq:1: <w> declares a writer but application \"noop\" is read-only") ||
		!strings.Contains(err.Error(), "f.seq:2: application \"unknown-app\" is not registered") || strings.Contains(err.Error(), "f.seq:3") {
		t.Fatalf("check: %v", err)
	}
}
