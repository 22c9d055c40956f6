package inventory

// paged is an array of records split into fixed-size pages, copy-on-write
// per page. A snapshot copies only the page table; the writer clones a page
// the first time it changes it after a snapshot (a page whose gen is older
// than the writer's current gen may be shared with a snapshot). This gives
// readers an immutable view at O(pages) cost while the writer goes on.
//
// Slot 0 is reserved so that index 0 can mean "none" in the intrusive
// lists that link records together.
type paged[T any] struct {
	pages []*page[T]
	n     int32 // slots in use, including the reserved slot 0
}

const (
	pageBits = 10
	pageSize = 1 << pageBits
	pageMask = pageSize - 1
)

type page[T any] struct {
	gen   uint64
	items [pageSize]T
}

func newPaged[T any]() paged[T] { return paged[T]{n: 1, pages: []*page[T]{{}}} }

// len is the number of slots, including slot 0.
func (p *paged[T]) len() int32 { return p.n }

// at returns a read-only pointer to slot i. Callers must not write through
// it: use mut. i must be < len().
func (p *paged[T]) at(i int32) *T { return &p.pages[i>>pageBits].items[i&pageMask] }

// mut returns a writable pointer to slot i, cloning its page first if the
// page may be shared with a snapshot.
func (p *paged[T]) mut(i int32, gen uint64) *T {
	pg := p.pages[i>>pageBits]
	if pg.gen != gen {
		c := *pg
		c.gen = gen
		pg = &c
		p.pages[i>>pageBits] = pg
	}
	return &pg.items[i&pageMask]
}

// grow makes slot i exist (zeroed) and returns it writable. Ids are dense,
// so this usually appends one slot.
func (p *paged[T]) grow(i int32, gen uint64) *T {
	for int(i>>pageBits) >= len(p.pages) {
		p.pages = append(p.pages, &page[T]{gen: gen})
	}
	if i >= p.n {
		p.n = i + 1
	}
	return p.mut(i, gen)
}

// snapshot returns a copy of the page table that shares the pages.
func (p *paged[T]) snapshot() paged[T] {
	return paged[T]{pages: append([]*page[T](nil), p.pages...), n: p.n}
}

// arena stores short immutable strings end to end. Offsets stay valid
// forever; appending never moves bytes a snapshot can see, because a
// snapshot keeps its own slice header and reads only below its length.
type arena struct{ b []byte }

func (a *arena) add(s string) (off uint32, n uint8) {
	off = uint32(len(a.b))
	a.b = append(a.b, s...)
	return off, uint8(len(s))
}

func (a arena) get(off uint32, n uint8) string { return string(a.b[off : off+uint32(n)]) }

// equal compares without allocating.
func (a arena) equal(off uint32, n uint8, s string) bool {
	return int(n) == len(s) && string(a.b[off:off+uint32(n)]) == s
}
