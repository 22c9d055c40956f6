// Package fs defines the filesystem driver interface of the storage element:
// a small core every backend implements, plus optional one-method
// capabilities discovered by type assertion. SRM protocol logic, the
// HTTPS/WebDAV data plane and third-party copy are written once, in package
// srm and its siblings, over these primitives.
//
// Confinement contract. A driver is constructed on one storage-area root
// and can address nothing else: every name is slash-separated and relative
// to that root ("" is the root itself), and drivers resolve names through
// srm/fs/rootfs, so "..", symbolic links (anywhere in a name) and mount
// points never lead out of the area, whatever the name or the tree holds.
// A symbolic link inside an area is listed as a link (Mode has
// fs.ModeSymlink; no size, no target metadata) and can be removed, but is
// never followed. Names with an element starting with rootfs.ReservedPrefix
// are the drivers' temporaries: callers must refuse them from clients.
//
// Writes are atomic and durable: Create returns a Writer whose bytes go to
// a temporary file; nothing is visible under the name until Commit (fsync,
// optional size check, rename over the name, directory fsync). A name that
// is a hard link or a symbolic link is replaced, never written through.
//
// Errors wrap the io/fs sentinels (fs.ErrNotExist, fs.ErrExist), syscall
// errnos (ENOTEMPTY, ENOTDIR, EISDIR) or the rootfs sentinels (ErrSymlink,
// ErrEscape, ErrHardLink, ErrBadName, ErrSizeMismatch) so callers map them
// with errors.Is. Error texts name area-relative names only, never a
// physical path; still, callers answer clients with their own phrases.
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

// IsLink reports whether the entry is a symbolic link (never followed).
func (fi FileInfo) IsLink() bool { return fi.Mode&iofs.ModeSymlink != 0 }

// Writer is a write in progress (see Driver.Create). It is used by one
// goroutine.
type Writer interface {
	io.Writer
	// Written returns the bytes written so far.
	Written() int64
	// Commit publishes the bytes under the name: fsync, size check when
	// expectSize >= 0 (rootfs.ErrSizeMismatch), rename over the name,
	// directory fsync. With replace false an existing name is ErrExist;
	// with replace true a file or link is replaced (a directory never).
	// On error the name keeps its previous content.
	Commit(expectSize int64, replace bool) error
	// Abort discards the write, leaving the name untouched; after Commit
	// it does nothing, so it can be deferred.
	Abort() error
}

// Driver is the core every filesystem backend implements, over names
// relative to its area root (see the package comment). All methods are
// safe for concurrent use.
type Driver interface {
	// Stat describes name without following a symbolic link.
	Stat(ctx context.Context, name string) (FileInfo, error)
	// List returns the entries of directory name sorted by name, links
	// included as links, temporaries hidden. A directory on another
	// filesystem is listed with fs.ModeIrregular: recursions skip it.
	List(ctx context.Context, name string) ([]FileInfo, error)
	// Mkdir creates directory name; the parent must exist (ErrNotExist
	// otherwise) and name must not (ErrExist).
	Mkdir(ctx context.Context, name string) error
	// Remove deletes a file, a link (not its target) or an empty directory
	// (ENOTEMPTY otherwise).
	Remove(ctx context.Context, name string) error
	// Rename moves from to to; to must not exist (ErrExist).
	Rename(ctx context.Context, from, to string) error
	// Replace moves file from over to, replacing a file or link named to
	// as a directory entry, and fsyncs the directory: how a staged upload
	// is published.
	Replace(ctx context.Context, from, to string) error
	// Chmod sets permission bits of a file or directory (not a link).
	Chmod(ctx context.Context, name string, mode iofs.FileMode) error
	// Open opens a regular file for reading; a file not resident on disk
	// (nearline) fails with ErrNotOnline.
	Open(ctx context.Context, name string) (ReadFile, error)
	// Create starts an atomic write of name; its directory must exist.
	Create(ctx context.Context, name string) (Writer, error)
}

// Sweeper is implemented by drivers that leave temporaries on disk.
type Sweeper interface {
	// Sweep removes the temporaries of an interrupted process, except
	// reserved names for which keep returns true; it returns how many it
	// removed.
	Sweep(ctx context.Context, keep func(name string) bool) (int, error)
}

// Checksummer is implemented by drivers that keep per-file checksums.
type Checksummer interface {
	// Adler32 returns the file's adler32 as 8 lowercase hex digits. It
	// returns the stored value when there is one; with compute it computes
	// and stores a missing (or, with compute, stale-by-mtime) value.
	Adler32(ctx context.Context, name string, compute bool) (string, error)
}

// SpaceReporter is implemented by drivers that can measure used space.
type SpaceReporter interface {
	// Used returns the bytes of the regular files of the area
	// (temporaries excluded).
	Used(ctx context.Context) (int64, error)
}

// Stager is implemented by drivers with a tape (nearline) tier.
type Stager interface {
	// Recall starts bringing name online (idempotent) and returns a channel
	// closed when it is online, with the outcome in *error after close.
	Recall(ctx context.Context, name string) (<-chan struct{}, *error)
	// Purge drops the disk copy of name when a tape copy exists; ErrLastCopy
	// when the disk copy is the only one.
	Purge(ctx context.Context, name string) error
	// Migrate copies name to tape (after PutDone).
	Migrate(ctx context.Context, name string) error
}
