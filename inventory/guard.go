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
	r CopyReader
	// The per-block state lives in dense (indexed by block id) for the
	// blocks a bulk guard was sized for, and in sparse (through sparseAt)
	// for the others: a cycle admits millions of deletions, and maps of
	// that size cost more in hashing, growth and cache misses than the
	// rest of the check.
	dense    []guardBlock
	sparseAt map[BlockID]int32 // index into sparse
	sparse   []guardBlock
	// The admitted replicas, in per-block lists linked from
	// guardBlock.admitted, in chunks of admittedChunk: appending never
	// copies what millions of admissions stored before.
	admitted  [][]admittedReplica
	nAdmitted int32
}

const admittedChunk = 1 << 14

func (g *DeletionGuard) admittedAt(i int32) *admittedReplica {
	return &g.admitted[i/admittedChunk][i%admittedChunk]
}

// guardBlock is what the guard knows of one block. Both fields are stored
// plus one, so the zero value means "nothing yet" and a bulk guard's array
// needs no initialization.
type guardBlock struct {
	left     int32 // 1 + copies counting as copies, minus those admitted for deletion; 0: not counted yet
	admitted int32 // 1 + index in DeletionGuard.admitted of the block's latest admitted replica; 0: none
}

// admittedReplica is one admitted (allowed) deletion.
type admittedReplica struct {
	site     SiteID
	next     int32 // the block's previous admitted replica, encoded like guardBlock.admitted
	lastCopy bool
}

// NewDeletionGuard returns a guard over r with nothing admitted yet.
func NewDeletionGuard(r CopyReader) *DeletionGuard {
	return &DeletionGuard{r: r}
}

// NewBulkDeletionGuard is NewDeletionGuard for a caller that admits the
// deletions of a large part of the inventory (a Detox cycle, carrying out
// its plan): it keeps its state in an array over block ids below blockIDs
// (8 bytes per id, paged in as used) instead of maps. The verdicts are the
// same.
func NewBulkDeletionGuard(r CopyReader, blockIDs int) *DeletionGuard {
	return &DeletionGuard{r: r, dense: make([]guardBlock, max(blockIDs, 0))}
}

// block returns b's state, creating it if create (nil otherwise when b has
// none yet).
func (g *DeletionGuard) block(b BlockID, create bool) *guardBlock {
	if b >= 0 && int(b) < len(g.dense) {
		return &g.dense[b]
	}
	if i, ok := g.sparseAt[b]; ok {
		return &g.sparse[i]
	}
	if !create {
		return nil
	}
	if g.sparseAt == nil {
		g.sparseAt = map[BlockID]int32{}
	}
	g.sparseAt[b] = int32(len(g.sparse))
	g.sparse = append(g.sparse, guardBlock{})
	return &g.sparse[len(g.sparse)-1]
}

// previous returns the verdict of an earlier admission of the replica.
func (g *DeletionGuard) previous(gb *guardBlock, site SiteID) (Verdict, bool) {
	if gb == nil {
		return Verdict{}, false
	}
	for i := gb.admitted; i != 0; {
		a := g.admittedAt(i - 1)
		if a.site == site {
			return Verdict{Allowed: true, LastCopy: a.lastCopy}, true
		}
		i = a.next
	}
	return Verdict{}, false
}

// Admit decides the deletion of the replica of block b at site. It is
// allowed when another copy survives everything admitted before it; if
// not, it is allowed only when allowLastCopy (the caller's explicit,
// audited opt-in) is true, and then marked LastCopy. An allowed deletion
// is counted as gone for later calls; admitting the same replica again
// returns the first verdict. A replica that does not exist is refused with
// GuardNoReplica.
func (g *DeletionGuard) Admit(b BlockID, site SiteID, allowLastCopy bool) Verdict {
	if v, ok := g.previous(g.block(b, false), site); ok {
		return v
	}
	v, counts := g.check(b, site, allowLastCopy)
	if v.Allowed {
		gb := g.block(b, true)
		if counts && gb.left > 1 {
			gb.left--
		}
		if g.nAdmitted%admittedChunk == 0 {
			// The first chunk grows as needed: most guards admit a few.
			c := 0
			if g.nAdmitted > 0 {
				c = admittedChunk
			}
			g.admitted = append(g.admitted, make([]admittedReplica, 0, c))
		}
		last := &g.admitted[len(g.admitted)-1]
		*last = append(*last, admittedReplica{site: site, next: gb.admitted, lastCopy: v.LastCopy})
		g.nAdmitted++
		gb.admitted = g.nAdmitted
	}
	return v
}

// Check is Admit without counting the deletion as done: what Admit would
// answer now.
func (g *DeletionGuard) Check(b BlockID, site SiteID, allowLastCopy bool) Verdict {
	if v, ok := g.previous(g.block(b, false), site); ok {
		return v
	}
	v, _ := g.check(b, site, allowLastCopy)
	return v
}

// check returns the verdict and whether the replica itself counts as a copy.
func (g *DeletionGuard) check(b BlockID, site SiteID, allowLastCopy bool) (Verdict, bool) {
	var counts bool
	gb := g.block(b, false)
	if gb != nil && gb.left != 0 {
		r, ok := g.r.BlockReplica(b, site)
		if !ok {
			return Verdict{Reason: GuardNoReplica}, false
		}
		s, _ := g.r.Site(site)
		counts = CountsAsCopy(s, r)
	} else {
		// The block's first question: one walk over its replicas finds
		// the replica (as BlockReplica would) and counts the copies (as
		// UsableCopies would). Most blocks of a cycle are asked once.
		var f blockFacts
		if w, ok := g.r.(blockFactsReader); ok {
			f = w.blockFacts(b, site)
		} else {
			for br := range g.r.BlockReplicas(b) {
				s, ok := g.r.Site(br.Site)
				f.add(br, s, ok, site)
			}
		}
		if !f.found {
			return Verdict{Reason: GuardNoReplica}, false
		}
		counts = f.counts
		gb = g.block(b, true)
		gb.left = 1 + int32(f.copies)
	}
	others := gb.left - 1
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

// blockFacts is the guard's first answer about a block: whether the
// replica at one site exists and counts as a copy, and how many of the
// block's replicas count.
type blockFacts struct {
	found, counts bool
	copies        int
}

// add folds in br, one replica of the block, at site s (siteOK: s exists),
// for the question about the replica at site.
func (f *blockFacts) add(br BlockReplica, s Site, siteOK bool, site SiteID) {
	c := siteOK && CountsAsCopy(s, br)
	if c {
		f.copies++
	}
	if br.Site == site && !f.found {
		f.found, f.counts = true, c
	}
}

// blockFactsReader is a CopyReader that walks a block's replicas without
// an iterator (whose closures a cycle would allocate millions of times).
type blockFactsReader interface {
	blockFacts(b BlockID, site SiteID) blockFacts
}

// blockFacts walks the same replicas as BlockReplicas.
func (s *Snapshot) blockFacts(b BlockID, site SiteID) blockFacts {
	var f blockFacts
	if !s.blockExists(b) {
		return f
	}
	for i := s.st.blocks.at(int32(b)).repHead; i != 0; i = s.st.replicas.at(i).nextInBlock {
		br := replicaView(s.st, i)
		sv, ok := s.Site(br.Site)
		f.add(br, sv, ok, site)
	}
	return f
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
