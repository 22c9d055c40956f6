// Package driver is the storage-site access layer used by the file-operation
// daemon, the consistency checker and the stager. A Driver talks to one storage
// endpoint (a local directory, a WebDAV server, an XRootD server, ...) through a
// small core interface; extra abilities (checksums, space usage, third-party
// copy, rename) are one-method interfaces discovered by type assertion.
//
// Drivers register themselves by URL scheme in init (Register) and are opened
// with Open(ctx, url, opts); blank-import fileop/driver/all to get every driver.
//
// Paths given to a Driver are slash-separated and relative to the root URL the
// driver was opened with; a leading "/" is ignored and ".." may not climb above
// the root (ErrInvalidPath). "" and "/" name the root itself.
package driver

import (
	"context"
	"io"
	"time"
)

// Entry describes one file or directory.
type Entry struct {
	// Name is the base name (for Stat of the root: "").
	Name string
	// Size in bytes; 0 for directories.
	Size int64
	// ModTime is the modification time; zero when the backend does not report it.
	ModTime time.Time
	// IsDir is true for directories (collections).
	IsDir bool
}

// Range selects the bytes Open returns. The zero Range is the whole file.
type Range struct {
	// Offset is the first byte returned.
	Offset int64
	// Length is the number of bytes; 0 means up to the end of the file.
	Length int64
}

// ListFunc receives one directory entry at a time. Returning a non-nil error
// stops the listing; List then returns that error unchanged.
type ListFunc func(Entry) error

// Driver is the core storage interface. All methods honour ctx cancellation
// and deadlines (returning an error wrapping ctx.Err()); failures are *Error
// values whose Kind is one of the Err* sentinels, so errors.Is(err,
// ErrNotFound) and Recoverable(err) work for every driver. A Driver is safe
// for concurrent use.
type Driver interface {
	// String returns the root URL the driver was opened with (no credentials).
	String() string

	// Stat describes path. Missing paths give ErrNotFound.
	Stat(ctx context.Context, path string) (Entry, error)

	// List calls fn for each entry of directory dir (not "." or ".."), in
	// backend order, as entries arrive: it never holds the whole directory in
	// memory. A missing dir gives ErrNotFound, a file gives ErrNotDir.
	List(ctx context.Context, dir string, fn ListFunc) error

	// Mkdir creates dir and any missing parents. An existing directory is not
	// an error; an existing file in the way gives ErrExists or ErrNotDir.
	Mkdir(ctx context.Context, dir string) error

	// Remove deletes the file at path. A missing file gives ErrNotFound (the
	// caller decides whether that counts as success); a directory gives ErrIsDir.
	Remove(ctx context.Context, path string) error

	// Rmdir deletes the empty directory dir. A non-empty directory gives
	// ErrNotEmpty, a missing one ErrNotFound.
	Rmdir(ctx context.Context, dir string) error

	// Open returns a reader for the bytes of path selected by r. The caller
	// must Close it. A missing file gives ErrNotFound, a directory ErrIsDir.
	Open(ctx context.Context, path string, r Range) (io.ReadCloser, error)

	// Put stores the content of src at path, creating missing parent
	// directories and replacing an existing file. size is the exact length or
	// -1 if unknown; when size >= 0 and src yields a different count, Put
	// fails with ErrSizeMismatch. A failed Put never leaves a partial file
	// behind where the backend allows it (local: temp file + rename).
	Put(ctx context.Context, path string, src io.Reader, size int64) error
}

// Algorithm names for Checksummer.
const (
	// AlgoAdler32 is ADLER32, rendered as 8 lowercase hex digits.
	AlgoAdler32 = "adler32"
)

// Checksummer is implemented by drivers that can return a file checksum
// without the caller reading the data. Checksum returns the value as the
// canonical string for algo (adler32: 8 lowercase hex digits).
// An unsupported algorithm, or a server that does not offer checksums, gives
// ErrUnsupported.
type Checksummer interface {
	Checksum(ctx context.Context, path, algo string) (string, error)
}

// Space is the storage usage of the area holding a path, in bytes.
type Space struct {
	Used  int64
	Total int64
}

// SpaceReporter is implemented by drivers that can report usage of the
// storage area holding path. ErrUnsupported when the server does not say.
type SpaceReporter interface {
	Space(ctx context.Context, path string) (Space, error)
}

// TPCOptions tunes a third-party copy.
type TPCOptions struct {
	// SourceAuthorization is sent to the source by the active party
	// (WLCG TransferHeaderAuthorization), e.g. "Bearer <token>". Optional.
	SourceAuthorization string
	// Streams is the X-Number-Of-Streams hint; 0 lets the server choose.
	Streams int
	// OnProgress, if set, is called with the bytes transferred so far as the
	// server reports performance markers.
	OnProgress func(bytes int64)
}

// ThirdPartyCopier is implemented by drivers whose server can pull a file
// from another URL itself (HTTP TPC pull mode: COPY to the destination with a
// Source header). CopyFrom returns nil only when the server reported success.
type ThirdPartyCopier interface {
	CopyFrom(ctx context.Context, dstPath, srcURL string, opts TPCOptions) error
}

// Renamer is implemented by drivers that can rename within the endpoint.
// An existing destination file is replaced.
type Renamer interface {
	Rename(ctx context.Context, from, to string) error
}

// LocalCopier is implemented by drivers that can copy from another
// instance of the same driver without the bytes crossing user space (two
// file:// sites on one machine: copy_file_range). CopyLocal reports
// handled=false, and does nothing, when src is not such an instance; when
// handled, the result carries the adler32 of the bytes copied, computed
// while copying, and the destination is in place (atomically, as Put).
type LocalCopier interface {
	CopyLocal(ctx context.Context, dstPath string, src Driver, srcPath string, size int64) (res CopyResult, handled bool, err error)
}
