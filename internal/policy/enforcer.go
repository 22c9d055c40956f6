package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
)

// EnforcerRules is a parsed enforcer rules file
// (dynamo-policies:common/enforcer_rules_*.json):
//
//	{"partition": P, "default_destination_group": G,
//	 "rules": {NAME: {"replicas": [cond], "num_copies": N,
//	                  "destinations": [site cond], "sources": [site cond],
//	                  "protect": bool}}}
type EnforcerRules struct {
	File                    string
	Partition               string
	DefaultDestinationGroup string
	Rules                   []*EnforcerRule // file order
}

// EnforcerRule keeps NumCopies full replicas of the datasets matching any
// Replicas condition on sites matching any Destinations condition, copying
// from sites matching any Sources condition (any site when empty). Protect
// makes Detox protect those replicas (replica.enforcer_protected).
type EnforcerRule struct {
	Name         string
	Replicas     []*Condition // ContextReplica
	NumCopies    int
	Destinations []*Condition // ContextSite
	Sources      []*Condition // ContextSite
	Protect      bool
}

type rawEnforcer struct {
	Partition               string                     `json:"partition"`
	DefaultDestinationGroup string                     `json:"default_destination_group"`
	Rules                   map[string]json.RawMessage `json:"rules"`
}

type rawEnforcerRule struct {
	Replicas     []string `json:"replicas"`
	NumCopies    *int     `json:"num_copies"`
	Destinations []string `json:"destinations"`
	Sources      []string `json:"sources"`
	Protect      bool     `json:"protect"`
}

// LoadEnforcerRules reads and parses an enforcer rules file.
func LoadEnforcerRules(path string) (*EnforcerRules, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read enforcer rules: %w", err)
	}
	return ParseEnforcerRules(path, src)
}

// ParseEnforcerRules decodes an enforcer rules file strictly (unknown keys
// are errors) and parses every condition with the policy language. Condition
// errors point into the JSON file (line and column of the string).
func ParseEnforcerRules(file string, src []byte) (*EnforcerRules, error) {
	var errs ErrorList
	fail := func(msg string, err error) (*EnforcerRules, error) {
		errs = append(errs, &Error{Kind: ErrPolicy, File: file, Msg: msg + ": " + err.Error()})
		return nil, errs
	}
	var raw rawEnforcer
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return fail("invalid enforcer rules JSON", err)
	}
	er := &EnforcerRules{File: file, Partition: raw.Partition, DefaultDestinationGroup: raw.DefaultDestinationGroup}
	top := func(msg string) {
		errs = append(errs, &Error{Kind: ErrPolicy, File: file, Msg: msg})
	}
	if raw.Partition == "" {
		top("missing \"partition\"")
	}
	if len(raw.Rules) == 0 {
		top("no \"rules\"")
	}
	names := make([]string, 0, len(raw.Rules))
	for name := range raw.Rules {
		names = append(names, name)
	}
	// file order: JSON objects are unordered, operators are not
	rulesAt := max(bytes.Index(src, []byte(`"rules"`)), 0)
	key := func(n string) int { return rulesAt + bytes.Index(src[rulesAt:], mustJSON(n)) }
	slices.SortFunc(names, func(a, b string) int { return key(a) - key(b) })

	for _, name := range names {
		var rr rawEnforcerRule
		d := json.NewDecoder(bytes.NewReader(raw.Rules[name]))
		d.DisallowUnknownFields()
		if err := d.Decode(&rr); err != nil {
			errs = append(errs, &Error{Kind: ErrPolicy, File: file, Msg: "rule " + name + ": " + err.Error()})
			continue
		}
		r := &EnforcerRule{Name: name, Protect: rr.Protect}
		from := max(key(name), 0)
		conds := func(list []string, ctx Context) []*Condition {
			var out []*Condition
			for _, text := range list {
				at := locate(src, from, text)
				c, cerrs := parseCondition(text, ctx, file, at)
				errs = append(errs, cerrs...)
				if c != nil {
					out = append(out, c)
				}
			}
			return out
		}
		r.Replicas = conds(rr.Replicas, ContextReplica)
		r.Destinations = conds(rr.Destinations, ContextSite)
		r.Sources = conds(rr.Sources, ContextSite)
		switch {
		case len(rr.Replicas) == 0:
			top("rule " + name + ": no \"replicas\" conditions")
		case len(rr.Destinations) == 0:
			top("rule " + name + ": no \"destinations\" conditions")
		case rr.NumCopies == nil:
			top("rule " + name + ": missing \"num_copies\"")
		case *rr.NumCopies < 1:
			top(fmt.Sprintf("rule %s: num_copies must be at least 1, got %d", name, *rr.NumCopies))
		default:
			r.NumCopies = *rr.NumCopies
		}
		er.Rules = append(er.Rules, r)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return er, nil
}

func mustJSON(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// locate finds the JSON string literal text at or after byte offset from
// and returns the position of its first character, so condition errors point
// into the file. Unfound (exotic escaping) falls back to line 0.
func locate(src []byte, from int, text string) Pos {
	lit := mustJSON(text)
	i := bytes.Index(src[from:], lit)
	if i < 0 {
		return Pos{Col: 1}
	}
	off := from + i + 1
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	col := off - (bytes.LastIndexByte(src[:off], '\n') + 1) + 1
	return Pos{Line: line, Col: col}
}

// RequiredAttrs returns the attribute producers the rule set needs.
func (er *EnforcerRules) RequiredAttrs() []string {
	var vars []*Variable
	for _, r := range er.Rules {
		for _, cs := range [][]*Condition{r.Replicas, r.Destinations, r.Sources} {
			for _, c := range cs {
				vars = append(vars, c.Variables()...)
			}
		}
	}
	return producersOf(vars)
}
