// Package local is the file:// driver: a directory on a POSIX filesystem
// (local disk, NFS, GPFS, a FUSE mount of a remote SE). It touches the
// directory only through the storage element's confined primitives
// (srm/fs/rootfs): every name is resolved by the kernel below the root,
// symbolic links are never followed (a link planted in a site cannot make a
// transfer read, write or delete outside it), and writes are a temporary in
// the target directory, fsync, rename, directory fsync. The adler32
// computed while writing is cached in an extended attribute so Checksum is
// free later.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// copyBuf is the write size of Put.
const copyBuf = 1 << 20

// copyBufs recycles copy buffers: allocating (and zeroing) 1 MiB per file
// was a large part of the cost of copying many small files.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBuf); return &b }}

func init() {
	driver.Register(driver.Info{Name: "local", Schemes: []string{"file"}, New: New})
}

// Local is the file:// driver. The zero value is not usable; use New.
type Local struct {
	root string
	url  string
	opts driver.Options
}

// New opens file:///abs/dir (host empty or "localhost"). The root need not
// exist yet: Mkdir("") or Put creates it.
func New(_ context.Context, u *url.URL, opts driver.Options) (driver.Driver, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, &driver.Error{Op: "open", URL: driver.Redact(u), Kind: driver.ErrInvalidPath, Err: fmt.Errorf("file URL with remote host %q", u.Host)}
	}
	if !filepath.IsAbs(u.Path) {
		return nil, &driver.Error{Op: "open", URL: driver.Redact(u), Kind: driver.ErrInvalidPath, Err: errors.New("file URL needs an absolute path (file:///dir)")}
	}
	return &Local{root: filepath.Clean(u.Path), url: "file://" + filepath.ToSlash(filepath.Clean(u.Path)), opts: opts}, nil
}

// String returns the root URL.
func (l *Local) String() string { return l.url }

// rel cleans p into a name relative to the root. It also fails fast on a
// done ctx, so every operation honours cancellation even when its syscalls
// would not block.
func (l *Local) rel(ctx context.Context, p string) (string, error) {
	rel, err := driver.CleanPath(p)
	if err != nil {
		return "", &driver.Error{Op: "path", URL: l.url + "/" + p, Kind: driver.ErrInvalidPath, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return "", driver.NewError(ctx, "path", driver.JoinURLPath(l.url, rel), nil, "", err)
	}
	return rel, nil
}

// openRoot opens the site directory for one operation. The configured
// path itself may go through links (it is the operator's); nothing below
// it is resolved but by the kernel, confined. Opening it per operation
// keeps no descriptor in an idle driver and follows a root that was
// removed and made again. With create, a missing root is made first.
func (l *Local) openRoot(create bool) (*rootfs.Root, error) {
	r, err := rootfs.Open(l.root)
	if err != nil && create && errors.Is(err, iofs.ErrNotExist) {
		if err := os.MkdirAll(l.root, 0o755); err != nil {
			return nil, errnoOf(err)
		}
		r, err = rootfs.Open(l.root)
	}
	if err != nil {
		return nil, errnoOf(err)
	}
	return r, nil
}

// errnoOf keeps the kind of an error from os without the physical path it
// names.
func errnoOf(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

func (l *Local) fail(ctx context.Context, op, rel string, err error) error {
	if err == nil {
		return nil
	}
	var de *driver.Error
	if errors.As(err, &de) {
		return err
	}
	kind, code := driver.ErrServer, ""
	var errno syscall.Errno
	switch {
	case errors.Is(err, rootfs.ErrSymlink), errors.Is(err, rootfs.ErrEscape), errors.Is(err, rootfs.ErrBadName), errors.Is(err, rootfs.ErrHardLink):
		// The name leads (or may lead) outside the site: refused, and
		// retrying cannot change that.
		kind = driver.ErrInvalidPath
	case errors.Is(err, rootfs.ErrNotRegular):
		kind = driver.ErrInvalid
	case errors.Is(err, rootfs.ErrSizeMismatch):
		kind = driver.ErrSizeMismatch
	case errors.As(err, &errno):
		kind, code = driver.KindFromErrno(errno), "errno "+errnoName(errno)
	}
	return driver.NewError(ctx, op, driver.JoinURLPath(l.url, rel), kind, code, err)
}

// entryOf describes what Lstat saw. A link is a non-directory of size 0,
// whatever it points at: listings never descend through it and a size
// check never passes on it.
func entryOf(in rootfs.Info) driver.Entry {
	e := driver.Entry{Name: in.Name, ModTime: in.ModTime, IsDir: in.IsDir()}
	if !e.IsDir {
		e.Size = in.Size
	}
	return e
}

// Stat implements driver.Driver. A symbolic link is refused
// (ErrInvalidPath): its target may be outside the site.
func (l *Local) Stat(ctx context.Context, p string) (driver.Entry, error) {
	rel, err := l.rel(ctx, p)
	if err != nil {
		return driver.Entry{}, err
	}
	r, err := l.openRoot(false)
	if err != nil {
		return driver.Entry{}, l.fail(ctx, "stat", rel, err)
	}
	defer r.Close()
	in, err := r.Lstat(rel)
	if err == nil && in.IsLink() {
		err = rootfs.ErrSymlink
	}
	if err != nil {
		return driver.Entry{}, l.fail(ctx, "stat", rel, err)
	}
	in.Name = pathBase(rel)
	return entryOf(in), nil
}

// List implements driver.Driver. Interrupted uploads are listed (callers
// tell them apart with driver.IsTemporary: the consistency check reports
// them as temporary, never as orphans); links are listed as they are, not
// as what they point at.
func (l *Local) List(ctx context.Context, dir string, fn driver.ListFunc) error {
	rel, err := l.rel(ctx, dir)
	if err != nil {
		return err
	}
	r, err := l.openRoot(false)
	if err != nil {
		return l.fail(ctx, "list", rel, err)
	}
	defer r.Close()
	var fnErr error
	n := 0
	err = r.ScanDir(rel, func(in rootfs.Info) error {
		if n++; n%512 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fn(entryOf(in)); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	return l.fail(ctx, "list", rel, err)
}

// Mkdir implements driver.Driver.
func (l *Local) Mkdir(ctx context.Context, dir string) error {
	rel, err := l.rel(ctx, dir)
	if err != nil {
		return err
	}
	r, err := l.openRoot(true)
	if err != nil {
		return l.fail(ctx, "mkdir", rel, err)
	}
	defer r.Close()
	return l.fail(ctx, "mkdir", rel, r.MkdirAll(rel, 0o755))
}

// Remove implements driver.Driver. A link is removed itself, never what it
// points at.
func (l *Local) Remove(ctx context.Context, p string) error {
	rel, err := l.rel(ctx, p)
	if err != nil {
		return err
	}
	r, err := l.openRoot(false)
	if err != nil {
		return l.fail(ctx, "remove", rel, err)
	}
	defer r.Close()
	in, err := r.Lstat(rel)
	if err != nil {
		return l.fail(ctx, "remove", rel, err)
	}
	if in.IsDir() {
		return l.fail(ctx, "remove", rel, syscall.EISDIR)
	}
	return l.fail(ctx, "remove", rel, r.Remove(rel))
}

// Rmdir implements driver.Driver.
func (l *Local) Rmdir(ctx context.Context, dir string) error {
	rel, err := l.rel(ctx, dir)
	if err != nil {
		return err
	}
	r, err := l.openRoot(false)
	if err != nil {
		return l.fail(ctx, "rmdir", rel, err)
	}
	defer r.Close()
	in, err := r.Lstat(rel)
	if err != nil {
		return l.fail(ctx, "rmdir", rel, err)
	}
	if !in.IsDir() {
		return l.fail(ctx, "rmdir", rel, syscall.ENOTDIR)
	}
	return l.fail(ctx, "rmdir", rel, r.Remove(rel))
}

// Open implements driver.Driver. Only a regular file with one link is
// opened: a link, or a hard link whose other name may be outside the site,
// is refused (ErrInvalidPath).
func (l *Local) Open(ctx context.Context, p string, rg driver.Range) (io.ReadCloser, error) {
	rel, err := l.rel(ctx, p)
	if err != nil {
		return nil, err
	}
	f, err := l.openFile(rel)
	if err != nil {
		return nil, l.fail(ctx, "open", rel, err)
	}
	if rg.Offset > 0 {
		if _, err := f.Seek(rg.Offset, io.SeekStart); err != nil {
			f.Close()
			return nil, l.fail(ctx, "open", rel, err)
		}
	}
	if rg.Length > 0 {
		return limitedFile{io.LimitReader(f, rg.Length), f}, nil
	}
	return f, nil
}

// openFile opens regular file rel for reading, confined.
func (l *Local) openFile(rel string) (*os.File, error) {
	r, err := l.openRoot(false)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Open(rel)
}

type limitedFile struct {
	io.Reader
	io.Closer
}

// Put implements driver.Driver.
func (l *Local) Put(ctx context.Context, p string, src io.Reader, size int64) error {
	rel, err := l.rel(ctx, p)
	if err != nil {
		return err
	}
	f, r, err := l.create(rel)
	if err != nil {
		return l.fail(ctx, "put", rel, err)
	}
	defer r.Close()
	defer f.Abort()
	// When the caller already hashes the stream (driver.Copy wraps its
	// source in an Adler32Reader), reuse that running sum: hashing twice
	// costs a fifth of the copy's CPU.
	var sum func() string
	var in io.Reader
	if ar, ok := src.(*driver.Adler32Reader); ok && ar.N() == 0 {
		sum, in = ar.Sum, driver.ContextReader(ctx, ar)
	} else {
		ar := driver.NewAdler32Reader(driver.ContextReader(ctx, src))
		sum, in = ar.Sum, ar
	}
	// Large writes: fewer syscalls and page-cache round trips than
	// io.Copy's 32 KiB.
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	n, err := io.CopyBuffer(&earlyWriteback{f: f}, in, *bp)
	if err != nil {
		return l.fail(ctx, "put", rel, err)
	}
	if size >= 0 && n != size {
		return driver.NewError(ctx, "put", driver.JoinURLPath(l.url, rel), driver.ErrSizeMismatch, "", fmt.Errorf("got %d bytes, announced %d", n, size))
	}
	return l.fail(ctx, "put", rel, l.publish(f, sum()))
}

// create starts a confined write of rel: its parents are made, and a
// temporary (rootfs.TempPrefix, which driver.IsTemporary recognizes) is
// opened in its directory. The caller closes the root and aborts or
// publishes the file.
func (l *Local) create(rel string) (*rootfs.File, *rootfs.Root, error) {
	if rel == "" {
		return nil, nil, syscall.EISDIR
	}
	r, err := l.openRoot(true)
	if err != nil {
		return nil, nil, err
	}
	// Fail before the bytes move rather than at the rename, which refuses
	// to replace a directory anyway.
	if in, err := r.Lstat(rel); err == nil && in.IsDir() {
		r.Close()
		return nil, nil, syscall.EISDIR
	}
	if err := r.MkdirAll(pathDir(rel), 0o755); err != nil {
		r.Close()
		return nil, nil, err
	}
	f, err := r.CreateUnsummed(rel, 0o644)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return f, r, nil
}

// publish records sum with the data and commits f: fsync, rename over the
// name (a link there is replaced, never written through), directory
// fsync. A crash before the directory reaches the disk may lose the
// rename, so the name never points at data that did not.
func (l *Local) publish(f *rootfs.File, sum string) error {
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	// The modification time the sum is keyed on is final once the data
	// is on disk; the sum itself is a cache and needs no fsync of its own.
	if err := f.Sync(); err != nil {
		return err
	}
	if in, err := f.Stat(); err == nil {
		storeSum(int(f.Fd()), in.ModTime, sum)
	}
	return f.Commit(-1, true)
}

// Rename implements driver.Renamer, creating the target's parent.
func (l *Local) Rename(ctx context.Context, from, to string) error {
	relf, err := l.rel(ctx, from)
	if err != nil {
		return err
	}
	relt, err := l.rel(ctx, to)
	if err != nil {
		return err
	}
	r, err := l.openRoot(false)
	if err != nil {
		return l.fail(ctx, "rename", relf, err)
	}
	defer r.Close()
	if _, err := r.Lstat(relf); err != nil {
		return l.fail(ctx, "rename", relf, err)
	}
	if err := r.MkdirAll(pathDir(relt), 0o755); err != nil {
		return l.fail(ctx, "rename", relf, err)
	}
	return l.fail(ctx, "rename", relf, r.Rename(relf, relt, true))
}

func pathDir(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

func pathBase(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[i+1:]
	}
	return rel
}

func errnoName(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return fmt.Sprintf("%d", int(e))
}

var errnoNames = map[syscall.Errno]string{
	syscall.ENOENT: "ENOENT", syscall.EEXIST: "EEXIST", syscall.EACCES: "EACCES", syscall.EPERM: "EPERM",
	syscall.EISDIR: "EISDIR", syscall.ENOTDIR: "ENOTDIR", syscall.ENOTEMPTY: "ENOTEMPTY",
	syscall.ENOSPC: "ENOSPC", syscall.EDQUOT: "EDQUOT", syscall.EROFS: "EROFS", syscall.ENAMETOOLONG: "ENAMETOOLONG",
	syscall.EINVAL: "EINVAL", syscall.EIO: "EIO",
}

var (
	_ driver.Driver        = (*Local)(nil)
	_ driver.Checksummer   = (*Local)(nil)
	_ driver.SpaceReporter = (*Local)(nil)
	_ driver.Renamer       = (*Local)(nil)
)
