package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Bindings[S] maps catalog variables to accessors on a caller-chosen subject
// type S (a Detox replica view, a site-partition view, a test struct, ...).
// A variable may be bound once, either as a scalar accessor (one value per
// subject) or as an Any accessor (several values per subject, e.g. the
// owners of all block replicas when the subject is a dataset replica). Any
// accessors call yield for each value and must return true as soon as yield
// does; the predicate is then true when it holds for some value, which is
// Dynamo's OR-over-blocks rule.
//
// Accessors must not retain or modify S and should not allocate: Match
// performance is theirs. Times are unix seconds. Enum accessors return the
// caller's own codes; Enum maps each catalog constant to one of them.
//
// Binding mistakes (unknown name, wrong type, double binding, incomplete
// enum codes) are collected and returned by Err and by Compile.
type Bindings[S any] struct {
	m    map[string]*binding[S]
	errs []error

	groups []*group[S] // set by Grouped
}

type binding[S any] struct {
	v *Variable

	str  func(S) string
	num  func(S) float64
	i64  func(S) int64 // bytes and time
	bl   func(S) bool
	enum func(S) int

	anyStr  func(S, func(string) bool) bool
	anyNum  func(S, func(float64) bool) bool
	anyI64  func(S, func(int64) bool) bool
	anyBool func(S, func(bool) bool) bool
	anyEnum func(S, func(int) bool) bool

	codes []int // enum: caller code per index of v.Enum

	group *group[S] // constant per group of subjects (Grouped), or nil
}

// ErrBinding is wrapped by every binding mistake.
var ErrBinding = errors.New("invalid binding")

// NewBindings returns an empty binding table.
func NewBindings[S any]() *Bindings[S] { return &Bindings[S]{m: map[string]*binding[S]{}} }

// Err returns every binding mistake so far, or nil.
func (b *Bindings[S]) Err() error { return errors.Join(b.errs...) }

// Bound reports whether name (a catalog name or alias) has an accessor.
func (b *Bindings[S]) Bound(name string) bool {
	v, ok := Lookup(name)
	return ok && b.m[v.Name] != nil
}

func (b *Bindings[S]) add(name string, t Type, fill func(*binding[S])) *Bindings[S] {
	v, ok := catalogByName[name]
	switch {
	case !ok:
		hint := ""
		if a, isAlias := aliases[name]; isAlias {
			hint = " (legacy alias; bind " + a + ")"
		} else if h := didYouMean(name, variableNames(0)); h != "" {
			hint = " (did you mean " + h + "?)"
		}
		b.errs = append(b.errs, fmt.Errorf("%w: unknown variable %q%s", ErrBinding, name, hint))
	case v.Type != t:
		b.errs = append(b.errs, fmt.Errorf("%w: %s is a %s, bound as %s", ErrBinding, name, v.Type, t))
	case v.Scope == ScopeConst:
		b.errs = append(b.errs, fmt.Errorf("%w: %s is a constant and needs no binding", ErrBinding, name))
	case b.m[name] != nil:
		b.errs = append(b.errs, fmt.Errorf("%w: %s bound twice", ErrBinding, name))
	default:
		bd := &binding[S]{v: v}
		fill(bd)
		b.m[name] = bd
	}
	return b
}

// String binds a string variable.
func (b *Bindings[S]) String(name string, f func(S) string) *Bindings[S] {
	return b.add(name, TypeString, func(x *binding[S]) { x.str = f })
}

// Number binds a number variable.
func (b *Bindings[S]) Number(name string, f func(S) float64) *Bindings[S] {
	return b.add(name, TypeNumber, func(x *binding[S]) { x.num = f })
}

// Bytes binds a size variable (bytes).
func (b *Bindings[S]) Bytes(name string, f func(S) int64) *Bindings[S] {
	return b.add(name, TypeBytes, func(x *binding[S]) { x.i64 = f })
}

// Time binds a time variable (unix seconds).
func (b *Bindings[S]) Time(name string, f func(S) int64) *Bindings[S] {
	return b.add(name, TypeTime, func(x *binding[S]) { x.i64 = f })
}

// Bool binds a boolean variable.
func (b *Bindings[S]) Bool(name string, f func(S) bool) *Bindings[S] {
	return b.add(name, TypeBool, func(x *binding[S]) { x.bl = f })
}

// Enum binds an enum variable. f returns the caller's code; codes maps every
// catalog constant of the variable (upper case, e.g. "READY") to its code.
func (b *Bindings[S]) Enum(name string, f func(S) int, codes map[string]int) *Bindings[S] {
	return b.add(name, TypeEnum, func(x *binding[S]) { x.enum = f; b.enumCodes(x, codes) })
}

// AnyString binds a multi-valued string variable.
func (b *Bindings[S]) AnyString(name string, f func(S, func(string) bool) bool) *Bindings[S] {
	return b.add(name, TypeString, func(x *binding[S]) { x.anyStr = f })
}

// AnyNumber binds a multi-valued number variable.
func (b *Bindings[S]) AnyNumber(name string, f func(S, func(float64) bool) bool) *Bindings[S] {
	return b.add(name, TypeNumber, func(x *binding[S]) { x.anyNum = f })
}

// AnyTime binds a multi-valued time variable (unix seconds).
func (b *Bindings[S]) AnyTime(name string, f func(S, func(int64) bool) bool) *Bindings[S] {
	return b.add(name, TypeTime, func(x *binding[S]) { x.anyI64 = f })
}

// AnyBool binds a multi-valued boolean variable.
func (b *Bindings[S]) AnyBool(name string, f func(S, func(bool) bool) bool) *Bindings[S] {
	return b.add(name, TypeBool, func(x *binding[S]) { x.anyBool = f })
}

func (b *Bindings[S]) enumCodes(x *binding[S], codes map[string]int) {
	x.codes = make([]int, len(x.v.Enum))
	for i, e := range x.v.Enum {
		c, ok := codes[e]
		if !ok {
			b.errs = append(b.errs, fmt.Errorf("%w: %s: no code for %s (need all of %s)", ErrBinding, x.v.Name, e, strings.Join(x.v.Enum, ", ")))
		}
		x.codes[i] = c
	}
	for k := range codes {
		if x.v.enumIndex(k) < 0 || k != strings.ToUpper(k) {
			b.errs = append(b.errs, fmt.Errorf("%w: %s has no constant %q (constants: %s)", ErrBinding, x.v.Name, k, strings.Join(x.v.Enum, ", ")))
		}
	}
}
