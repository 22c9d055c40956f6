// Package local is the file:// driver: a directory on a POSIX filesystem
// (local disk, NFS, GPFS, a FUSE mount of a remote SE). Writes are atomic
// (temp file in the target directory, fsync, rename) and the adler32 computed
// while writing is cached in an extended attribute so Checksum is free later.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// tmpPrefix marks in-flight uploads. List returns them like any file:
// callers tell them apart with driver.IsTemporary (the consistency check
// reports them as temporary, never as orphans).
const tmpPrefix = driver.TempPrefix

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

// abs resolves p under the root. It also fails fast on a done ctx, so every
// operation honours cancellation even when its syscalls would not block.
func (l *Local) abs(ctx context.Context, p string) (string, string, error) {
	rel, err := driver.CleanPath(p)
	if err != nil {
		return "", "", &driver.Error{Op: "path", URL: l.url + "/" + p, Kind: driver.ErrInvalidPath, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return "", "", driver.NewError(ctx, "path", driver.JoinURLPath(l.url, rel), nil, "", err)
	}
	return filepath.Join(l.root, filepath.FromSlash(rel)), rel, nil
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
	if errors.As(err, &errno) {
		kind, code = driver.KindFromErrno(errno), "errno "+errnoName(errno)
	}
	return driver.NewError(ctx, op, driver.JoinURLPath(l.url, rel), kind, code, err)
}

func entryOf(name string, fi fs.FileInfo) driver.Entry {
	e := driver.Entry{Name: name, ModTime: fi.ModTime(), IsDir: fi.IsDir()}
	if !e.IsDir {
		e.Size = fi.Size()
	}
	return e
}

// Stat implements driver.Driver.
func (l *Local) Stat(ctx context.Context, p string) (driver.Entry, error) {
	a, rel, err := l.abs(ctx, p)
	if err != nil {
		return driver.Entry{}, err
	}
	fi, err := os.Stat(a)
	if err != nil {
		return driver.Entry{}, l.fail(ctx, "stat", rel, err)
	}
	return entryOf(pathBase(rel), fi), nil
}

// List implements driver.Driver, reading the directory in batches.
func (l *Local) List(ctx context.Context, dir string, fn driver.ListFunc) error {
	a, rel, err := l.abs(ctx, dir)
	if err != nil {
		return err
	}
	f, err := os.Open(a)
	if err != nil {
		return l.fail(ctx, "list", rel, err)
	}
	defer f.Close()
	for {
		if err := ctx.Err(); err != nil {
			return l.fail(ctx, "list", rel, err)
		}
		ents, rerr := f.ReadDir(512)
		for _, de := range ents {
			fi, err := de.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while listing
			}
			if err != nil {
				return l.fail(ctx, "list", rel, err)
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				if t, err := os.Stat(filepath.Join(a, de.Name())); err == nil {
					fi = t
				}
			}
			if err := fn(entryOf(de.Name(), fi)); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return l.fail(ctx, "list", rel, rerr)
		}
	}
}

// Mkdir implements driver.Driver.
func (l *Local) Mkdir(ctx context.Context, dir string) error {
	a, rel, err := l.abs(ctx, dir)
	if err != nil {
		return err
	}
	return l.fail(ctx, "mkdir", rel, os.MkdirAll(a, 0o755))
}

// Remove implements driver.Driver.
func (l *Local) Remove(ctx context.Context, p string) error {
	a, rel, err := l.abs(ctx, p)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(a)
	if err != nil {
		return l.fail(ctx, "remove", rel, err)
	}
	if fi.IsDir() {
		return l.fail(ctx, "remove", rel, syscall.EISDIR)
	}
	return l.fail(ctx, "remove", rel, os.Remove(a))
}

// Rmdir implements driver.Driver.
func (l *Local) Rmdir(ctx context.Context, dir string) error {
	a, rel, err := l.abs(ctx, dir)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(a)
	if err != nil {
		return l.fail(ctx, "rmdir", rel, err)
	}
	if !fi.IsDir() {
		return l.fail(ctx, "rmdir", rel, syscall.ENOTDIR)
	}
	return l.fail(ctx, "rmdir", rel, syscall.Rmdir(a))
}

// Open implements driver.Driver.
func (l *Local) Open(ctx context.Context, p string, r driver.Range) (io.ReadCloser, error) {
	a, rel, err := l.abs(ctx, p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(a)
	if err != nil {
		return nil, l.fail(ctx, "open", rel, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = syscall.EISDIR
	}
	if err == nil && r.Offset > 0 {
		_, err = f.Seek(r.Offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, l.fail(ctx, "open", rel, err)
	}
	if r.Length > 0 {
		return limitedFile{io.LimitReader(f, r.Length), f}, nil
	}
	return f, nil
}

type limitedFile struct {
	io.Reader
	io.Closer
}

// Put implements driver.Driver.
func (l *Local) Put(ctx context.Context, p string, src io.Reader, size int64) error {
	a, rel, err := l.abs(ctx, p)
	if err != nil {
		return err
	}
	if rel == "" {
		return l.fail(ctx, "put", rel, syscall.EISDIR)
	}
	if fi, err := os.Stat(a); err == nil && fi.IsDir() {
		return l.fail(ctx, "put", rel, syscall.EISDIR)
	}
	dir := filepath.Dir(a)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return l.fail(ctx, "put", rel, err)
	}
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return l.fail(ctx, "put", rel, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// When the caller already hashes the stream (driver.Copy wraps its
	// source in an Adler32Reader), reuse that running sum: hashing twice
	// costs a fifth of the copy's CPU.
	var sum func() string
	var r io.Reader
	if ar, ok := src.(*driver.Adler32Reader); ok && ar.N() == 0 {
		sum, r = ar.Sum, driver.ContextReader(ctx, ar)
	} else {
		ar := driver.NewAdler32Reader(driver.ContextReader(ctx, src))
		sum, r = ar.Sum, ar
	}
	// Large writes: fewer syscalls and page-cache round trips than
	// io.Copy's 32 KiB (os.File.ReadFrom would pick that buffer).
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	n, err := io.CopyBuffer(&earlyWriteback{f: f}, r, *bp)
	if err != nil {
		return l.fail(ctx, "put", rel, err)
	}
	if size >= 0 && n != size {
		return driver.NewError(ctx, "put", driver.JoinURLPath(l.url, rel), driver.ErrSizeMismatch, "", fmt.Errorf("got %d bytes, announced %d", n, size))
	}
	// fsync before rename: after a crash the name must never point at a
	// file whose data did not reach the disk.
	if err := f.Sync(); err != nil {
		return l.fail(ctx, "put", rel, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return l.fail(ctx, "put", rel, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return l.fail(ctx, "put", rel, err)
	}
	storeSum(f, fi, sum())
	if err := f.Close(); err != nil {
		return l.fail(ctx, "put", rel, err)
	}
	if err := publish(tmp, a); err != nil {
		return l.fail(ctx, "put", rel, err)
	}
	ok = true
	return nil
}

// publish renames the synced temporary tmp over name and syncs the
// directory: until the directory is on disk a crash may lose the rename,
// leaving the old file (or none) under name. This is the storage
// element's write rule (srm/fs/rootfs), so both drivers are as durable.
func publish(tmp, name string) error {
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Rename implements driver.Renamer, creating the target's parent.
func (l *Local) Rename(ctx context.Context, from, to string) error {
	af, relf, err := l.abs(ctx, from)
	if err != nil {
		return err
	}
	at, _, err := l.abs(ctx, to)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(af); err != nil {
		return l.fail(ctx, "rename", relf, err)
	}
	if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
		return l.fail(ctx, "rename", relf, err)
	}
	return l.fail(ctx, "rename", relf, os.Rename(af, at))
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
