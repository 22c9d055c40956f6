package policy

import (
	"errors"
	"slices"
	"time"
)

// CompiledPolicy is a Policy bound to a replica subject R (decision rules,
// Order) and a site subject T (On, When, Until). It holds no Detox logic:
// block stripping, iteration and quotas stay in Detox.
type CompiledPolicy[R, T any] struct {
	Policy *Policy
	On     []*Matcher[T]
	When   []*Matcher[T]
	Until  []*Matcher[T]
	Rules  []CompiledRule[R] // same order as Policy.Rules
	Order  *Sorter[R]
}

// CompiledRule is one decision line and its matcher.
type CompiledRule[R any] struct {
	*Matcher[R]
	Rule *Rule
}

// CompilePolicy binds every condition and the Order keys of p. Any unbound
// variable anywhere is an error (all are reported, with positions), so a
// policy either fully runs or does not load.
func CompilePolicy[R, T any](p *Policy, replicas *Bindings[R], sites *Bindings[T], now time.Time) (*CompiledPolicy[R, T], error) {
	cp := &CompiledPolicy[R, T]{Policy: p}
	var errs []error
	site := func(lines []SiteLine) []*Matcher[T] {
		out := make([]*Matcher[T], 0, len(lines))
		for _, l := range lines {
			m, err := Compile(l.Cond, sites, now)
			if err != nil {
				errs = append(errs, Errors(err)...)
				continue
			}
			out = append(out, m)
		}
		return out
	}
	cp.On, cp.When, cp.Until = site(p.On), site(p.When), site(p.Until)
	for i := range p.Rules {
		m, err := Compile(p.Rules[i].Cond, replicas, now)
		if err != nil {
			errs = append(errs, Errors(err)...)
			continue
		}
		cp.Rules = append(cp.Rules, CompiledRule[R]{Matcher: m, Rule: &p.Rules[i]})
	}
	o, err := CompileOrder(p.Order, replicas)
	if err != nil {
		errs = append(errs, Errors(err)...)
	}
	cp.Order = o
	if len(errs) > 0 {
		return nil, dedupErrors(errs)
	}
	return cp, nil
}

// dedupErrors drops repeated identical messages (a broken Bindings is
// reported once, not once per condition) and returns an ErrorList when
// every error is an *Error.
func dedupErrors(errs []error) error {
	var out ErrorList
	var other []error
	seen := map[string]bool{}
	for _, e := range errs {
		if seen[e.Error()] {
			continue
		}
		seen[e.Error()] = true
		if pe, ok := e.(*Error); ok {
			out = append(out, pe)
		} else {
			other = append(other, e)
		}
	}
	if len(other) > 0 {
		return errors.Join(append(other, out.Unwrap()...)...)
	}
	return out
}

// IsTarget reports whether any On line matches.
func (cp *CompiledPolicy[R, T]) IsTarget(t T) bool { return anyMatch(cp.On, t) }

// Triggered reports whether any When line matches.
func (cp *CompiledPolicy[R, T]) Triggered(t T) bool { return anyMatch(cp.When, t) }

// Released reports whether any Until line matches.
func (cp *CompiledPolicy[R, T]) Released(t T) bool { return anyMatch(cp.Until, t) }

func anyMatch[S any](ms []*Matcher[S], s S) bool {
	for _, m := range ms {
		if m.Match(s) {
			return true
		}
	}
	return false
}

// FirstMatch returns the index into Rules of the first rule at or after
// from that matches r, or -1. Detox calls it repeatedly to walk the rule
// list (block rules do not end the walk); no match means the default
// decision (Policy.Default).
func (cp *CompiledPolicy[R, T]) FirstMatch(r R, from int) int {
	for i := from; i < len(cp.Rules); i++ {
		if cp.Rules[i].Match(r) {
			return i
		}
	}
	return -1
}

// CompilePartition returns a matcher for membership in the named partition:
// its condition, or for a super-partition the OR of its leaf conditions.
func CompilePartition[S any](ps *Partitions, name string, b *Bindings[S], now time.Time) (*Matcher[S], error) {
	p, ok := ps.Lookup(name)
	if !ok {
		e := &Error{Kind: ErrPolicy, File: ps.File, Text: name, Msg: "unknown partition"}
		if h := didYouMean(name, ps.Names()); h != "" {
			e.Hint = "did you mean " + h + "?"
		}
		return nil, ErrorList{e}
	}
	leaves := ps.Leaves(name)
	ms := make([]func(S) bool, 0, len(leaves))
	var errs []error
	for _, l := range leaves {
		m, err := Compile(l.Cond, b, now)
		if err != nil {
			errs = append(errs, Errors(err)...)
			continue
		}
		ms = append(ms, m.fn)
	}
	if len(errs) > 0 {
		return nil, dedupErrors(errs)
	}
	cond := p.Cond
	if cond == nil {
		// a super-partition has no text of its own; describe it by its leaves
		cond = &Condition{Text: p.Text, Ctx: ContextReplica, Root: orNode(leaves), File: ps.File, At: Pos{Line: p.Line, Col: 1}}
	}
	return &Matcher[S]{cond: cond, fn: orOf(ms)}, nil
}

func orNode(leaves []*Partition) Node {
	terms := make([]Node, len(leaves))
	for i, l := range leaves {
		terms[i] = l.Cond.Root
	}
	if len(terms) == 1 {
		return terms[0]
	}
	return &Or{Terms: slices.Clip(terms)}
}
