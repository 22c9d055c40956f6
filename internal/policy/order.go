package policy

import "fmt"

// Sorter orders deletion candidates by a policy's Order keys.
type Sorter[S any] struct {
	keys []func(S) float64
	dec  []bool
}

// CompileOrder binds Order keys to subjects of type S. Keys need scalar
// accessors (Number, Bytes or Time). An empty key list yields a Sorter whose
// Compare always returns 0 (Order none: keep the input order, use a stable
// sort).
func CompileOrder[S any](keys []OrderKey, b *Bindings[S]) (*Sorter[S], error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	o := &Sorter[S]{}
	var errs ErrorList
	for _, k := range keys {
		bd := b.m[k.Var.Name]
		var f func(S) float64
		switch {
		case bd == nil:
		case bd.num != nil:
			f = bd.num
		case bd.i64 != nil:
			g := bd.i64
			f = func(s S) float64 { return float64(g(s)) }
		}
		if f == nil {
			errs = append(errs, &Error{Kind: ErrUnbound, File: k.File, Line: k.At.Line, Col: k.At.Col, Text: k.Name,
				Msg: "sort key has no scalar binding", Hint: fmt.Sprintf("bind %s with Number, Bytes or Time", k.Var.Name)})
			continue
		}
		o.keys = append(o.keys, f)
		o.dec = append(o.dec, k.Decreasing)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return o, nil
}

// Compare returns -1 when a sorts before b (is deleted first), +1 after, 0
// when the keys tie.
func (o *Sorter[S]) Compare(a, b S) int {
	for i, k := range o.keys {
		x, y := k(a), k(b)
		if o.dec[i] {
			x, y = y, x
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

// Key appends the sort key of s to dst (decreasing keys negated), so callers
// sorting millions of candidates can compute keys once.
func (o *Sorter[S]) Key(s S, dst []float64) []float64 {
	for i, k := range o.keys {
		v := k(s)
		if o.dec[i] {
			v = -v
		}
		dst = append(dst, v)
	}
	return dst
}
