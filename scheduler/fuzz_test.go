package scheduler

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseSequences: a sequences file, however broken, parses or gives a
// *ParseError whose every problem names a line of the file and says what
// is wrong; never a panic. Parsing is deterministic (the same file gives
// the same sequences), since a standby and the holder must agree on it.
func FuzzParseSequences(f *testing.F) {
	f.Add("<detox> = $(DYNAMO_BASE)/exec/detox\n{fom} = fom --verbose\n\n[SEQUENCE detox]\n& <detox> --policy $(POLICIES)/Physics.txt\nWAIT 14400\n\n[SEQUENCE fom] restart\n| [90s] {fom}\n^[0.5] {fom} --x \"a b\"\nWAIT 4*450\nTERMINATE\n")
	f.Add("[SEQUENCE a]\nWAIT 1m\n")
	f.Add("<x> = \n[SEQUENCE ]\n& [zz] <y>\nWAIT -1\n[SEQUENCE a]\n[SEQUENCE a]\n")
	f.Add("{a} = b $(UNSET\n[SEQUENCE s]\n| {a}\n")
	env := func(k string) (string, bool) {
		if k == "DYNAMO_BASE" || k == "POLICIES" {
			return "/opt/" + strings.ToLower(k), true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, src string) {
		sf, err := ParseSequences(strings.NewReader(src), "fuzz.seq", env)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				// Only reading can fail otherwise: a line over the scanner's bound.
				if !strings.Contains(err.Error(), "fuzz.seq") {
					t.Fatalf("error %q does not name the file", err)
				}
				return
			}
			lines := strings.Count(src, "\n") + 1
			if len(pe.Errs) == 0 {
				t.Fatal("a ParseError without problems")
			}
			for _, le := range pe.Errs {
				if le.Line < 1 || le.Line > lines || le.Msg == "" {
					t.Fatalf("problem %+v: no line of the %d-line file or no message", le, lines)
				}
			}
			return
		}
		again, err := ParseSequences(strings.NewReader(src), "fuzz.seq", env)
		if err != nil || !reflect.DeepEqual(sf, again) {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}
