package inventory

import (
	"errors"
	"fmt"
	"iter"
)

// The last-copy guard. Every path that deletes block replicas (Detox
// planning and Apply, the file-operation deletion queue, deletion
// requests, consistency repairs, operator actions) asks the same
// DeletionGuard, so that one rule, written once, decides what counts as a
// surviving copy:
//
//	A block replica may be deleted only if, once everything else admitted
//	before it in the same plan is gone, at least one other copy of the
//	block counts (CountsAsCopy): complete, not pending deletion, not
//	suspicious, at a site whose status is ready or waitroom, of any
//	storage type.
//
// Incomplete copies, copies at morgue or unknown-status sites and copies
// already pending deletion never count. The rule applies to the replica
// being deleted whatever it is: a sole incomplete replica, or a complete
// one at a morgue site, is still the only data there is.

// ErrLastCopy is returned (wrapped, naming the replica) by destructive
// choke points that refuse a deletion because the guard did.
var ErrLastCopy = errors.New("last copy")

// GuardReason is why the guard refused a deletion.
type GuardReason string

// Guard reasons.
const (
	// GuardLastCopy: no other copy of the block would survive.
	GuardLastCopy GuardReason = "last copy"
	// GuardNoReplica: the replica does not exist (nothing to delete).
	GuardNoReplica GuardReason = "no such replica"
)

// UsableSite reports whether copies at s count as surviving copies: its
// status is ready or waitroom. The storage type does not matter (a tape
// copy is a copy).
func UsableSite(s Site) bool {
	return s.Status == SiteReady || s.Status == SiteWaitroom
}

// CountsAsCopy reports whether replica r at site s is a copy that other
// deletions may rely on: complete, not pending deletion, not suspicious,
// at a usable site.
func CountsAsCopy(s Site, r BlockReplica) bool {
	return r.Complete && !r.PendingDeletion && !r.Suspicious && UsableSite(s)
}

// CopyReader is what the guard reads; *Snapshot implements it.
type CopyReader interface {
	Site(id SiteID) (Site, bool)
	BlockReplica(b BlockID, site SiteID) (BlockReplica, bool)
	BlockReplicas(b BlockID) iter.Seq[BlockReplica]
}

var _ CopyReader = (*Snapshot)(nil)

// UsableCopies counts the copies of block b that CountsAsCopy, leaving out
// the replica at site except (0: none left out).
func UsableCopies(r CopyReader, b BlockID, except SiteID) int {
	n := 0
	for br := range r.BlockReplicas(b) {
		if br.Site == except {
			continue
		}
		if s, ok := r.Site(br.Site); ok && CountsAsCopy(s, br) {
			n++
		}
	}
	return n
}

// ReplicaID names a block replica.
type ReplicaID struct {
	Block BlockID
	Site  SiteID
}

// Verdict is the guard's answer for one deletion.
type Verdict struct {
	// Allowed: the deletion may go ahead (it is now counted as gone).
	Allowed bool
	// LastCopy: allowed only through the caller's explicit opt-in; the
	// block keeps no usable copy. Callers must mark such deletions
	// ("LAST COPY") wherever they report them.
	LastCopy bool
	// Reason says why a deletion was refused ("" when allowed).
	Reason GuardReason
}

// DeletionGuard admits the deletions of one plan, in order, against a
// state (a snapshot taken when the plan is made, or the current one when
// it is carried out). Each admitted deletion is counted as gone for the
// ones after it, so a plan can never remove every copy piecemeal.
//
// Use:
//
//	g := inventory.NewDeletionGuard(snap)
//	for _, d := range deletions {
//		v := g.Admit(d.Block, d.Site, false) // true only with an explicit per-partition opt-in
//		if !v.Allowed { keep d, record v.Reason ("last copy"); continue }
//		delete d
//	}
//
// A DeletionGuard is not safe for concurrent use. It never writes.
type DeletionGuard struct {
	r        CopyReader
	left     map[BlockID]int32 // copies counting as copies, minus those admitted for deletion
	admitted map[ReplicaID]Verdict
}

// NewDeletionGuard returns a guard over r with nothing admitted yet.
func NewDeletionGuard(r CopyReader) *DeletionGuard {
	return &DeletionGuard{r: r, left: map[BlockID]int32{}, admitted: map[ReplicaID]Verdict{}}
}

// Admit decides the deletion of the replica of block b at site. It is
// allowed when another copy survives everything admitted before it; if
// not, it is allowed only when allowLastCopy (the caller's explicit,
// audited opt-in) is true, and then marked LastCopy. An allowed deletion
// is counted as gone for later calls; admitting the same replica again
// returns the first verdict. A replica that does not exist is refused with
// GuardNoReplica.
func (g *DeletionGuard) Admit(b BlockID, site SiteID, allowLastCopy bool) Verdict {
	id := ReplicaID{b, site}
	if v, ok := g.admitted[id]; ok {
		return v
	}
	v, counts := g.check(id, allowLastCopy)
	if v.Allowed {
		g.admitted[id] = v
		if counts {
			g.left[b]--
		}
	}
	return v
}

// Check is Admit without counting the deletion as done: what Admit would
// answer now.
func (g *DeletionGuard) Check(b BlockID, site SiteID, allowLastCopy bool) Verdict {
	id := ReplicaID{b, site}
	if v, ok := g.admitted[id]; ok {
		return v
	}
	v, _ := g.check(id, allowLastCopy)
	return v
}

// check returns the verdict and whether the replica itself counts as a copy.
func (g *DeletionGuard) check(id ReplicaID, allowLastCopy bool) (Verdict, bool) {
	r, ok := g.r.BlockReplica(id.Block, id.Site)
	if !ok {
		return Verdict{Reason: GuardNoReplica}, false
	}
	s, _ := g.r.Site(id.Site)
	counts := CountsAsCopy(s, r)
	n, ok := g.left[id.Block]
	if !ok {
		n = int32(UsableCopies(g.r, id.Block, 0))
		g.left[id.Block] = n
	}
	others := n
	if counts {
		others--
	}
	switch {
	case others >= 1:
		return Verdict{Allowed: true}, counts
	case allowLastCopy:
		return Verdict{Allowed: true, LastCopy: true}, counts
	}
	return Verdict{Reason: GuardLastCopy}, counts
}

// CheckDeletions runs a fresh guard over dels in order and returns one
// verdict per deletion. allowLastCopy (nil: never) says which deletions
// carry the explicit opt-in.
func CheckDeletions(r CopyReader, dels []ReplicaID, allowLastCopy func(ReplicaID) bool) []Verdict {
	g := NewDeletionGuard(r)
	out := make([]Verdict, len(dels))
	for i, d := range dels {
		out[i] = g.Admit(d.Block, d.Site, allowLastCopy != nil && allowLastCopy(d))
	}
	return out
}

// LastCopyError is the error a choke point returns for a refused deletion:
// it wraps ErrLastCopy and names the replica.
func LastCopyError(r CopyReader, blockName string, site SiteID) error {
	name := fmt.Sprintf("site %d", site)
	if s, ok := r.Site(site); ok {
		name = s.Name
	}
	return fmt.Errorf("%w: deleting %s at %s would leave no complete copy at a ready or waitroom site", ErrLastCopy, blockName, name)
}
