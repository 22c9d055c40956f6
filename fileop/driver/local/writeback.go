package local

import (
	"golang.org/x/sys/unix"

	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// writebackChunk is how much is written before the kernel is asked to start
// writing it to disk.
const writebackChunk = 16 << 20

// earlyWriteback wraps f so that every writebackChunk bytes written start
// asynchronous writeback of that range (sync_file_range WRITE, which does
// not wait). The fsync before the rename then finds most data already on
// its way to disk, so disk and CPU work overlap instead of the copy doing
// all its CPU work first and all its disk work in one final fsync. It
// changes no durability guarantee: that fsync still happens.
type earlyWriteback struct {
	f          *rootfs.File
	off, dirty int64
}

func (w *earlyWriteback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.dirty += int64(n)
	if w.dirty >= writebackChunk {
		// Best effort: an error (e.g. a filesystem without support) only
		// loses the overlap.
		_ = unix.SyncFileRange(int(w.f.Fd()), w.off, w.dirty, unix.SYNC_FILE_RANGE_WRITE)
		w.off += w.dirty
		w.dirty = 0
	}
	return n, err
}
