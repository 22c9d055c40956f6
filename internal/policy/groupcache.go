package policy

import (
	"fmt"
	"sync/atomic"
)

// GroupCache remembers, per group of subjects, the value of the conditions
// that read only group-constant variables (Bindings.Grouped). A Detox
// replica view belongs to its dataset's group: a name glob is then matched
// once per dataset and cycle instead of once per replica of the dataset.
//
// Slots are assigned when conditions are compiled; Reset sizes the cache
// afterwards. Each (group, slot) holds two bits (unknown, false, true);
// concurrent matchers may compute the same value twice, which is harmless
// because a grouped condition is a pure function of the group's constant
// variables, and record it with an atomic OR.
type GroupCache struct {
	slots  int // compiled slots
	stride int // words per group, fixed by Reset
	groups int
	words  []atomic.Uint32
}

// NewGroupCache returns an empty cache; bind it with Bindings.Grouped,
// compile, then Reset before matching.
func NewGroupCache() *GroupCache { return &GroupCache{} }

// Slots returns how many conditions were compiled into the cache.
func (g *GroupCache) Slots() int { return g.slots }

// Reset forgets every value and sizes the cache for group keys [0, groups).
// It must not run concurrently with matchers that use the cache. Call it
// again whenever a grouped variable may have changed. Slots compiled after
// the last Reset, and keys outside the range, are evaluated uncached.
func (g *GroupCache) Reset(groups int) {
	g.stride = (g.slots + slotsPerWord - 1) / slotsPerWord
	g.groups = groups
	n := g.stride * groups
	if cap(g.words) >= n {
		g.words = g.words[:n]
		clear(g.words)
		return
	}
	g.words = make([]atomic.Uint32, n)
}

const slotsPerWord = 16

const (
	cachedFalse uint32 = 1
	cachedTrue  uint32 = 3
)

// group is one Grouped declaration: its cache and key.
type group[S any] struct {
	cache *GroupCache
	key   func(S) int32
}

// memoized wraps f (a condition over g's constant variables) in a slot.
func memoized[S any](g *group[S], f func(S) bool) func(S) bool {
	c, key := g.cache, g.key
	slot := c.slots
	c.slots++
	word, shift := slot/slotsPerWord, uint(slot%slotsPerWord)*2
	return func(s S) bool {
		k := int(key(s))
		if word >= c.stride || uint(k) >= uint(c.groups) {
			return f(s)
		}
		w := &c.words[k*c.stride+word]
		if st := (w.Load() >> shift) & 3; st != 0 {
			return st == cachedTrue
		}
		v := f(s)
		bits := cachedFalse
		if v {
			bits = cachedTrue
		}
		w.Or(bits << shift)
		return v
	}
}

// Grouped declares that the named variables, already bound, depend only on
// the subject's group key(s) and do not change until the next cache.Reset.
// Conditions over the variables of one group alone are then evaluated once
// per group. Several groupings may be declared (a replica's dataset, its
// site), each with its own cache; a variable belongs to one. Declaring a
// variable that changes between Resets (e.g. a copy count the caller
// updates while matching) makes matchers return stale values.
func (b *Bindings[S]) Grouped(cache *GroupCache, key func(S) int32, names ...string) *Bindings[S] {
	if cache == nil || key == nil {
		b.errs = append(b.errs, fmt.Errorf("%w: Grouped needs a cache and a key", ErrBinding))
		return b
	}
	g := &group[S]{cache: cache, key: key}
	b.groups = append(b.groups, g)
	for _, name := range names {
		bd := b.m[name]
		switch {
		case bd == nil:
			b.errs = append(b.errs, fmt.Errorf("%w: grouped variable %q is not bound", ErrBinding, name))
		case bd.group != nil:
			b.errs = append(b.errs, fmt.Errorf("%w: %s grouped twice", ErrBinding, name))
		default:
			bd.group = g
		}
	}
	return b
}

// groupOf returns the group whose variables (and constants) are all n
// reads, or nil, and whether memoizing n is worth a cache lookup: it
// matches a string (globs, regular expressions, lists) or combines several
// predicates.
func groupOf[S any](b *Bindings[S], n Node) (g *group[S], worth bool) {
	only, preds := true, 0
	walk(n, func(p *Predicate) {
		if p.Var.Scope == ScopeConst {
			return
		}
		preds++
		bd := b.m[p.Var.Name]
		switch {
		case bd == nil || bd.group == nil || (g != nil && bd.group != g):
			only = false
		default:
			g = bd.group
			if p.Var.Type == TypeString {
				worth = true
			}
		}
	})
	if !only || preds == 0 {
		return nil, false
	}
	return g, worth || preds > 1
}
