package registry

import (
	"fmt"
	"slices"
	"strings"
)

// LockSet answers "is this replica locked?" for Detox, over the locks
// returned by Store.ActiveLocks. Build it once per cycle: it compiles the
// dataset globs.
type LockSet struct {
	blocks map[string][]*Lock // "dataset#block" -> locks naming exactly that block
	exact  map[string][]*Lock // dataset name -> locks naming exactly that dataset
	globs  []compiledLock     // dataset globs
}

type compiledLock struct {
	pat  matcher
	lock *Lock
}

// NewLockSet compiles locks. A lock whose item does not compile (written
// by an older version, or by hand) is an error naming it rather than a
// lock silently ignored.
func NewLockSet(locks []Lock) (*LockSet, error) {
	ls := &LockSet{blocks: map[string][]*Lock{}, exact: map[string][]*Lock{}}
	for i := range locks {
		l := &locks[i]
		switch {
		case strings.Contains(l.Item, "#"):
			ls.blocks[l.Item] = append(ls.blocks[l.Item], l)
		case literalPrefix(l.Item) == l.Item:
			ls.exact[l.Item] = append(ls.exact[l.Item], l)
		default:
			p, err := compileMatcher(l.Item)
			if err != nil {
				return nil, fmt.Errorf("lock %d: %w", l.ID, err)
			}
			ls.globs = append(ls.globs, compiledLock{p, l})
		}
	}
	return ls, nil
}

func (l *Lock) covers(site, group string) bool {
	return (len(l.Sites) == 0 || slices.Contains(l.Sites, site)) && (len(l.Groups) == 0 || slices.Contains(l.Groups, group))
}

// Protects returns the first lock protecting the replica of block (named
// "dataset#block") of dataset at site owned by group, or nil. A dataset
// lock covers all its blocks; sites and groups left empty in a lock cover
// every site and group.
func (ls *LockSet) Protects(dataset, block, site, group string) *Lock {
	for _, l := range ls.blocks[block] {
		if l.covers(site, group) {
			return l
		}
	}
	for _, l := range ls.exact[dataset] {
		if l.covers(site, group) {
			return l
		}
	}
	for _, c := range ls.globs {
		if c.lock.covers(site, group) && c.pat.Match(dataset) {
			return c.lock
		}
	}
	return nil
}
