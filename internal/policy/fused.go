package policy

import "time"

// fused returns a single closure for the hottest predicate shapes on scalar
// accessors (equality on strings, globs, enums; ordered comparison on
// numbers and times), saving the extra indirect call lift costs. It returns
// nil for everything else, which then takes the general path. The
// semantics must stay identical to the general path; TestFusedMatchesGeneral
// checks that.
func fused[S any](p *Predicate, bd *binding[S], now time.Time) func(S) bool {
	neg := p.Negate
	switch {
	case p.Var.Type == TypeString && bd.str != nil && (p.Op == OpEq || p.Op == OpNe):
		get, want := bd.str, (p.Op == OpEq) != neg
		if g := p.Value.Glob; g != nil {
			return func(s S) bool { return g.Match(get(s)) == want }
		}
		lit := p.Value.Text
		return func(s S) bool { return (get(s) == lit) == want }
	case p.Var.Type == TypeEnum && bd.enum != nil && (p.Op == OpEq || p.Op == OpNe):
		get, x, want := bd.enum, bd.codes[p.Value.Enum], (p.Op == OpEq) != neg
		return func(s S) bool { return (get(s) == x) == want }
	case p.Var.Type == TypeNumber && bd.num != nil && p.Value != nil:
		return fusedOrdered(bd.num, p.Op, p.Value.Num, neg)
	case p.Var.Type == TypeTime && bd.i64 != nil:
		return fusedOrdered(bd.i64, p.Op, p.Value.Time.Resolve(now).Unix(), neg)
	case p.Var.Type == TypeBytes && bd.i64 != nil && p.Value != nil:
		return fusedOrdered(bd.i64, p.Op, p.Value.Bytes, neg)
	}
	return nil
}

func fusedOrdered[S any, T int64 | float64](get func(S) T, op Op, x T, neg bool) func(S) bool {
	switch op {
	case OpEq:
		return func(s S) bool { return (get(s) == x) != neg }
	case OpNe:
		return func(s S) bool { return (get(s) != x) != neg }
	case OpLt, OpOlder:
		return func(s S) bool { return (get(s) < x) != neg }
	case OpGt, OpNewer:
		return func(s S) bool { return (get(s) > x) != neg }
	case OpLe:
		return func(s S) bool { return (get(s) <= x) != neg }
	case OpGe:
		return func(s S) bool { return (get(s) >= x) != neg }
	}
	return nil
}
