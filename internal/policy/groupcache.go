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

// memoized wraps f (a condition over group-constant variables) in slot.
func memoized[S any](g *GroupCache, key func(S) int32, f func(S) bool) func(S) bool {
	slot := g.slots
	g.slots++
	word, shift := slot/slotsPerWord, uint(slot%slotsPerWord)*2
	return func(s S) bool {
		k := int(key(s))
		if word >= g.stride || uint(k) >= uint(g.groups) {
			return f(s)
		}
		w := &g.words[k*g.stride+word]
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
// Conditions over such variables alone are then evaluated once per group.
// Declaring a variable that changes between Resets (e.g. a copy count the
// caller updates while matching) makes matchers return stale values.
func (b *Bindings[S]) Grouped(cache *GroupCache, key func(S) int32, names ...string) *Bindings[S] {
	switch {
	case cache == nil || key == nil:
		b.errs = append(b.errs, fmt.Errorf("%w: Grouped needs a cache and a key", ErrBinding))
		return b
	case b.cache != nil && b.cache != cache:
		b.errs = append(b.errs, fmt.Errorf("%w: Grouped with two caches", ErrBinding))
		return b
	}
	b.cache, b.groupKey = cache, key
	for _, name := range names {
		bd := b.m[name]
		if bd == nil {
			b.errs = append(b.errs, fmt.Errorf("%w: grouped variable %q is not bound", ErrBinding, name))
			continue
		}
		bd.grouped = true
	}
	return b
}

// groupOnly reports whether every predicate under n reads a grouped
// variable or a constant, and whether memoizing n is worth a cache lookup:
// it matches a string (globs, regular expressions, lists) or combines
// several predicates.
func groupOnly[S any](b *Bindings[S], n Node) (only, worth bool) {
	only, preds := true, 0
	walk(n, func(p *Predicate) {
		if p.Var.Scope == ScopeConst {
			return
		}
		preds++
		if bd := b.m[p.Var.Name]; bd == nil || !bd.grouped {
			only = false
		} else if p.Var.Type == TypeString {
			worth = true
		}
	})
	return only && preds > 0, worth || preds > 1
}
