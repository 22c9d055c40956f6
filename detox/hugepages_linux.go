package detox

import (
	"syscall"
	"unsafe"
)

// hugePages asks the kernel to back s with transparent huge pages, before
// anything touches it. A cycle's arrays are hundreds of MiB to GiB, freshly
// allocated each cycle: in 4 KiB pages the first touch costs one page
// fault per page (most of the build phase's system time at CMS scale),
// and their random accesses miss the TLB. The advice is a hint: hosts
// whose transparent huge pages are off ignore it, and so does this.
func hugePages[T any](s []T) []T {
	const huge = 2 << 20
	if cap(s) == 0 {
		return s
	}
	size := uintptr(cap(s)) * unsafe.Sizeof(s[:1][0])
	if size < 2*huge {
		return s
	}
	p := unsafe.Pointer(unsafe.SliceData(s))
	start := uintptr(p)
	// madvise needs page-aligned bounds: advise the huge-page-aligned
	// part inside the array.
	lo, hi := (start+huge-1)&^(huge-1), (start+size)&^(huge-1)
	if hi > lo {
		_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, lo-start)), hi-lo), syscall.MADV_HUGEPAGE)
	}
	return s
}
