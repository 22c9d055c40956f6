package policy

import (
	"os"
	"testing"
)

// FuzzParseEnforcerRules: an enforcer rules file, however broken, parses
// or fails with *Errors naming the file, never a panic; every condition it
// accepts renders to text that parses back to the same condition.
func FuzzParseEnforcerRules(f *testing.F) {
	if b, err := os.ReadFile("testdata/enforcer.json"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		`{"partition": "AnalysisOps", "rules": {"r": {"replicas": ["dataset.name == /*/*/RAW"], "num_copies": 1, "destinations": ["site.name == T2_*"], "protect": true}}}`,
		`{"partition": "A", "rules": {"r": {"replicas": ["dataset.name == ("], "num_copies": -1}}}`,
		`{"partition": "A", "rules": {"r": {"replicas": [], "destinations": ["site.nam == T2_*"]}}, "extra": 1}`,
		`{"rules": {"a": {}, "a": {}}}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		er, err := ParseEnforcerRules("fuzz.json", src)
		if err != nil {
			for _, e := range Errors(err) {
				pe, ok := e.(*Error)
				if !ok || pe.File != "fuzz.json" || pe.Msg == "" {
					t.Fatalf("error %T %v is not a *Error naming the file", e, e)
				}
			}
			return
		}
		for _, r := range er.Rules {
			for _, group := range []struct {
				ctx   Context
				conds []*Condition
			}{{ContextReplica, r.Replicas}, {ContextSite, r.Destinations}, {ContextSite, r.Sources}} {
				for _, c := range group.conds {
					out := c.String()
					c2, err := ParseCondition(out, group.ctx)
					if err != nil || c2.String() != out {
						t.Fatalf("rule %s: condition renders as %q, which does not parse back: %v", r.Name, out, err)
					}
				}
			}
		}
	})
}
