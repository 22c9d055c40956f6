package consistency

import (
	"container/heap"
	"errors"
)

// sortedSource is a stream of records in byte order of their names: one
// sorted run file of the listing or of the inventory side.
type sortedSource[R any] interface {
	Next() bool
	Rec() *R
	Err() error
	Close() error
}

// kmerge merges sorted sources into one sorted stream through a heap of
// their current records. Memory is one read buffer per source, whatever
// the total. A name present in several sources (which neither a correct
// listing nor the inventory produces) is emitted once.
type kmerge[R any] struct {
	all     []sortedSource[R]
	h       sourceHeap[R]
	name    func(*R) []byte
	keep    func(dst, src *R) // copies src into dst's own buffers
	out     R
	last    []byte
	started bool
	err     error
}

type sourceHeap[R any] struct {
	s    []sortedSource[R]
	name func(*R) []byte
}

func (h sourceHeap[R]) Len() int { return len(h.s) }
func (h sourceHeap[R]) Less(i, j int) bool {
	return cmpName(h.name(h.s[i].Rec()), h.name(h.s[j].Rec())) < 0
}
func (h sourceHeap[R]) Swap(i, j int) { h.s[i], h.s[j] = h.s[j], h.s[i] }
func (h *sourceHeap[R]) Push(x any)   { h.s = append(h.s, x.(sortedSource[R])) }
func (h *sourceHeap[R]) Pop() any {
	x := h.s[len(h.s)-1]
	h.s = h.s[:len(h.s)-1]
	return x
}

// newKmerge takes ownership of srcs (Close closes them all, also on error).
func newKmerge[R any](srcs []sortedSource[R], name func(*R) []byte, keep func(dst, src *R)) (*kmerge[R], error) {
	m := &kmerge[R]{all: srcs, name: name, keep: keep}
	m.h.name = name
	for _, s := range srcs {
		if s.Next() {
			m.h.s = append(m.h.s, s)
		} else if err := s.Err(); err != nil {
			m.Close()
			return nil, err
		}
	}
	heap.Init(&m.h)
	return m, nil
}

func (m *kmerge[R]) Next() bool {
	for m.err == nil && len(m.h.s) > 0 {
		top := m.h.s[0]
		rec := top.Rec()
		dup := m.started && cmpName(m.name(rec), m.last) == 0
		if !dup {
			m.keep(&m.out, rec)
			m.last = m.name(&m.out)
			m.started = true
		}
		if top.Next() {
			heap.Fix(&m.h, 0)
		} else {
			if err := top.Err(); err != nil {
				m.err = err
				return false
			}
			heap.Pop(&m.h)
		}
		if !dup {
			return true
		}
	}
	return false
}

func (m *kmerge[R]) Rec() *R    { return &m.out }
func (m *kmerge[R]) Err() error { return m.err }
func (m *kmerge[R]) Close() error {
	var errs []error
	for _, s := range m.all {
		errs = append(errs, s.Close())
	}
	m.all, m.h.s = nil, nil
	return errors.Join(errs...)
}
