package policy

import (
	"slices"
	"time"
)

// Matcher is a compiled condition bound to subjects of type S. Match is safe
// for concurrent use and does not allocate (beyond what accessors do).
type Matcher[S any] struct {
	cond *Condition
	fn   func(S) bool
}

// Match evaluates the condition on s.
func (m *Matcher[S]) Match(s S) bool { return m.fn(s) }

// Condition returns the source condition.
func (m *Matcher[S]) Condition() *Condition { return m.cond }

// RequiredAttrs returns the attribute producers the condition needs.
func (m *Matcher[S]) RequiredAttrs() []string { return m.cond.RequiredAttrs() }

// Compile binds c to b. Time expressions are resolved against now, once:
// callers compile per cycle (it is cheap) so that "1 week ago" moves with
// the clock. Every variable c uses must be bound (constants always/never
// need no binding); otherwise the error lists each unbound use with its
// position.
func Compile[S any](c *Condition, b *Bindings[S], now time.Time) (*Matcher[S], error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	cp := &compiler[S]{b: b, now: now, file: c.File}
	fn := cp.node(c.Root)
	if len(cp.errs) > 0 {
		return nil, cp.errs
	}
	return &Matcher[S]{cond: c, fn: fn}, nil
}

// disableFused turns off the fused fast paths; tests compare both paths.
var disableFused = false

type compiler[S any] struct {
	b    *Bindings[S]
	now  time.Time
	file string
	errs ErrorList

	inGroup bool // compiling inside a memoized subtree
}

func (cp *compiler[S]) node(n Node) func(S) bool {
	if len(cp.b.groups) > 0 && !cp.inGroup {
		if g, worth := groupOf(cp.b, n); g != nil && worth {
			cp.inGroup = true
			f := cp.node(n)
			cp.inGroup = false
			if len(cp.errs) > 0 {
				return f
			}
			return memoized(g, f)
		}
	}
	switch n := n.(type) {
	case *And:
		return andOf(cp.nodes(n.Terms))
	case *Or:
		return orOf(cp.nodes(n.Terms))
	case *Not:
		x := cp.node(n.X)
		return func(s S) bool { return !x(s) }
	case *Predicate:
		return cp.predicate(n)
	}
	panic("policy: unknown node type")
}

func (cp *compiler[S]) nodes(ns []Node) []func(S) bool {
	out := make([]func(S) bool, len(ns))
	for i, n := range ns {
		out[i] = cp.node(n)
	}
	return out
}

// andOf and orOf unroll the common short chains: a closure call per term is
// the whole cost of the combinator.
func andOf[S any](fs []func(S) bool) func(S) bool {
	switch len(fs) {
	case 1:
		return fs[0]
	case 2:
		a, b := fs[0], fs[1]
		return func(s S) bool { return a(s) && b(s) }
	case 3:
		a, b, c := fs[0], fs[1], fs[2]
		return func(s S) bool { return a(s) && b(s) && c(s) }
	}
	return func(s S) bool {
		for _, f := range fs {
			if !f(s) {
				return false
			}
		}
		return true
	}
}

func orOf[S any](fs []func(S) bool) func(S) bool {
	switch len(fs) {
	case 1:
		return fs[0]
	case 2:
		a, b := fs[0], fs[1]
		return func(s S) bool { return a(s) || b(s) }
	}
	return func(s S) bool {
		for _, f := range fs {
			if f(s) {
				return true
			}
		}
		return false
	}
}

func constant[S any](v bool) func(S) bool { return func(S) bool { return v } }

func (cp *compiler[S]) predicate(p *Predicate) func(S) bool {
	if p.Var.Scope == ScopeConst {
		return constant[S]((p.Var.Name == "always") != p.Negate)
	}
	bd := cp.b.m[p.Var.Name]
	if bd == nil {
		hint := "the caller must bind " + p.Var.Name
		if p.Var.Producer != "" {
			hint += " (attribute producer " + p.Var.Producer + ")"
		}
		cp.errs = append(cp.errs, &Error{Kind: ErrUnbound, File: cp.file, Line: p.At.Line, Col: p.At.Col, Text: p.Name, Msg: "variable has no binding", Hint: hint})
		return constant[S](false)
	}
	if f := fused(p, bd, cp.now); f != nil && !disableFused {
		return f
	}
	switch p.Var.Type {
	case TypeString:
		return lift(bd.str, bd.anyStr, negated(stringTest(p), p.Negate))
	case TypeNumber:
		return lift(bd.num, bd.anyNum, negated(orderedTest(p.Op, values(p, func(v *Value) float64 { return v.Num })), p.Negate))
	case TypeBytes:
		return lift(bd.i64, bd.anyI64, negated(orderedTest(p.Op, values(p, func(v *Value) int64 { return v.Bytes })), p.Negate))
	case TypeTime:
		now := cp.now
		return lift(bd.i64, bd.anyI64, negated(orderedTest(p.Op, values(p, func(v *Value) int64 { return v.Time.Resolve(now).Unix() })), p.Negate))
	case TypeBool:
		if bd.bl != nil {
			f := bd.bl
			if p.Negate {
				return func(s S) bool { return !f(s) }
			}
			return f
		}
		want := !p.Negate
		return lift(nil, bd.anyBool, func(v bool) bool { return v == want })
	case TypeEnum:
		return lift(bd.enum, bd.anyEnum, negated(enumTest(p, bd.codes), p.Negate))
	}
	panic("policy: unknown variable type")
}

// lift applies a value test to a subject through a scalar accessor (get) or
// a multi-valued one (any: true when some value passes).
func lift[S, T any](get func(S) T, any func(S, func(T) bool) bool, test func(T) bool) func(S) bool {
	if get != nil {
		return func(s S) bool { return test(get(s)) }
	}
	return func(s S) bool { return any(s, test) }
}

func negated[T any](test func(T) bool, neg bool) func(T) bool {
	if !neg {
		return test
	}
	return func(v T) bool { return !test(v) }
}

// values returns the right-hand side(s) of p converted by conv.
func values[T any](p *Predicate, conv func(*Value) T) []T {
	if p.Value != nil {
		return []T{conv(p.Value)}
	}
	out := make([]T, len(p.List))
	for i, v := range p.List {
		out[i] = conv(v)
	}
	return out
}

func orderedTest[T int64 | float64](op Op, xs []T) func(T) bool {
	x := xs[0]
	switch op {
	case OpEq:
		return func(v T) bool { return v == x }
	case OpNe:
		return func(v T) bool { return v != x }
	case OpLt, OpOlder:
		return func(v T) bool { return v < x }
	case OpGt, OpNewer:
		return func(v T) bool { return v > x }
	case OpLe:
		return func(v T) bool { return v <= x }
	case OpGe:
		return func(v T) bool { return v >= x }
	case OpIn:
		return func(v T) bool { return slices.Contains(xs, v) }
	case OpNotIn:
		return func(v T) bool { return !slices.Contains(xs, v) }
	}
	panic("policy: operator not valid for ordered type")
}

func stringTest(p *Predicate) func(string) bool {
	switch p.Op {
	case OpEq, OpNe:
		eq := strMatcher(p.Value)
		if p.Op == OpNe {
			return func(v string) bool { return !eq(v) }
		}
		return eq
	case OpMatch:
		re := p.Value.Regex
		return re.MatchString
	case OpNotMatch:
		re := p.Value.Regex
		return func(v string) bool { return !re.MatchString(v) }
	case OpIn, OpNotIn:
		ms := make([]func(string) bool, len(p.List))
		for i, v := range p.List {
			ms[i] = strMatcher(v)
		}
		want := p.Op == OpIn
		return func(v string) bool {
			for _, m := range ms {
				if m(v) {
					return want
				}
			}
			return !want
		}
	}
	panic("policy: operator not valid for strings")
}

func strMatcher(v *Value) func(string) bool {
	if v.Glob != nil {
		return v.Glob.Match
	}
	lit := v.Text
	return func(s string) bool { return s == lit }
}

func enumTest(p *Predicate, codes []int) func(int) bool {
	xs := values(p, func(v *Value) int { return codes[v.Enum] })
	x := xs[0]
	switch p.Op {
	case OpEq:
		return func(v int) bool { return v == x }
	case OpNe:
		return func(v int) bool { return v != x }
	case OpIn:
		return func(v int) bool { return slices.Contains(xs, v) }
	case OpNotIn:
		return func(v int) bool { return !slices.Contains(xs, v) }
	}
	panic("policy: operator not valid for enums")
}
