// Package fs defines the filesystem driver interface of the storage element:
// a small core every backend implements, plus optional one-method
// capabilities discovered by type assertion. SRM protocol logic is written
// once, in package srm, over these primitives.
//
// Drivers receive physical paths that the namespace has already cleaned,
// resolved and contained in a storage-area root; they must not be exposed to
// client-supplied paths directly. Errors wrap the io/fs sentinels
// (fs.ErrNotExist, fs.ErrExist) or syscall errnos (ENOTEMPTY, ENOTDIR,
// EISDIR) so callers can map them with errors.Is.
package fs

import (
	"context"
	"io"
	iofs "io/fs"
	"time"
)

// Locality is where a file's data currently is (SRM TFileLocality).
type Locality int

// Localities.
const (
	Online            Locality = iota // on disk only
	Nearline                          // on tape only: needs a recall
	OnlineAndNearline                 // on disk and on tape
	None                              // no data (e.g. a directory)
)

// String returns the SRM TFileLocality name.
func (l Locality) String() string {
	return [...]string{"ONLINE", "NEARLINE", "ONLINE_AND_NEARLINE", "NONE"}[l]
}

// FileInfo describes one namespace entry.
type FileInfo struct {
	Name     string
	Size     int64
	Mode     iofs.FileMode // type bits and permission bits
	ModTime  time.Time
	Ctime    time.Time // inode change time, used as "created at"
	Locality Locality
}

// IsDir reports whether the entry is a directory.
func (fi FileInfo) IsDir() bool { return fi.Mode.IsDir() }

// ReadFile is an open file for reading.
type ReadFile interface {
	io.ReadSeekCloser
	io.ReaderAt
}

// Driver is the core every filesystem backend implements. All methods are
// safe for concurrent use.
type Driver interface {
	// Stat describes p (following symlinks).
	Stat(ctx context.Context, p string) (FileInfo, error)
	// List returns the entries of directory p sorted by name.
	List(ctx context.Context, p string) ([]FileInfo, error)
	// Mkdir creates directory p; the parent must exist (ErrNotExist
	// otherwise) and p must not (ErrExist).
	Mkdir(ctx context.Context, p string) error
	// Remove deletes a file or an empty directory (ENOTEMPTY otherwise).
	Remove(ctx context.Context, p string) error
	// Rename moves from to to; to must not exist.
	Rename(ctx context.Context, from, to string) error
	// Chmod sets permission bits.
	Chmod(ctx context.Context, p string, mode iofs.FileMode) error
	// Open opens a file for reading; a file not resident on disk (nearline)
	// fails with ErrNotOnline.
	Open(ctx context.Context, p string) (ReadFile, error)
	// Create creates or truncates a file for writing; the parent must exist.
	Create(ctx context.Context, p string) (io.WriteCloser, error)
}

// Checksummer is implemented by drivers that keep per-file checksums.
type Checksummer interface {
	// Adler32 returns the file's adler32 as 8 lowercase hex digits. It
	// returns the stored value when there is one; with compute it computes
	// and stores a missing (or, with compute, stale-by-mtime) value.
	Adler32(ctx context.Context, p string, compute bool) (string, error)
}

// SpaceReporter is implemented by drivers that can measure used space.
type SpaceReporter interface {
	// Used returns the bytes used by regular files below root.
	Used(ctx context.Context, root string) (int64, error)
}

// Stager is implemented by drivers with a tape (nearline) tier.
type Stager interface {
	// Recall starts bringing p online (idempotent) and returns a channel
	// closed when it is online, with the outcome in *error after close.
	Recall(ctx context.Context, p string) (<-chan struct{}, *error)
	// Purge drops the disk copy of p when a tape copy exists; ErrLastCopy
	// when the disk copy is the only one.
	Purge(ctx context.Context, p string) error
	// Migrate copies p to tape (after PutDone).
	Migrate(ctx context.Context, p string) error
}
