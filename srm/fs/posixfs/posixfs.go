// Package posixfs is the storage-element driver for POSIX filesystems. All
// access goes through a srm/fs/rootfs Root on the area root, so the driver
// cannot touch anything outside it (see the srm/fs package comment).
//
// It keeps each file's adler32 in an extended attribute with the mtime it
// was computed for (internal/sumxattr, the format fileop's file:// driver
// uses too), so a file changed behind the SE's back is noticed. Writes compute the sum while
// streaming and publish it with the data.
package posixfs

import (
	"context"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	iofs "io/fs"
	"syscall"

	"github.com/dynamo-go/dynamo/internal/sumxattr"
	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// filePerm and dirPerm are the modes of what the SE creates.
const (
	filePerm = 0o644
	dirPerm  = 0o755
)

// Posix is the driver of one area root.
type Posix struct {
	root *rootfs.Root
}

// New opens the driver on directory root (which must exist).
func New(root string) (*Posix, error) {
	r, err := rootfs.Open(root)
	if err != nil {
		return nil, err
	}
	return &Posix{root: r}, nil
}

// Root returns the confined root, for drivers built on this one.
func (p *Posix) Root() *rootfs.Root { return p.root }

// Close releases the root.
func (p *Posix) Close() error { return p.root.Close() }

func info(in rootfs.Info) fs.FileInfo {
	fi := fs.FileInfo{Name: in.Name, Size: in.Size, Mode: in.Mode, ModTime: in.ModTime, Ctime: in.Ctime}
	if in.IsDir() || in.IsLink() || in.Mode&iofs.ModeIrregular != 0 {
		fi.Locality = fs.None
	}
	return fi
}

// Stat implements fs.Driver.
func (p *Posix) Stat(_ context.Context, name string) (fs.FileInfo, error) {
	in, err := p.root.Lstat(name)
	if err != nil {
		return fs.FileInfo{}, err
	}
	return info(in), nil
}

// List implements fs.Driver.
func (p *Posix) List(_ context.Context, name string) ([]fs.FileInfo, error) {
	l, err := p.root.ReadDir(name)
	if err != nil {
		return nil, err
	}
	out := make([]fs.FileInfo, len(l))
	for i, in := range l {
		out[i] = info(in)
	}
	return out, nil
}

// Mkdir implements fs.Driver.
func (p *Posix) Mkdir(_ context.Context, name string) error { return p.root.Mkdir(name, dirPerm) }

// Remove implements fs.Driver.
func (p *Posix) Remove(_ context.Context, name string) error { return p.root.Remove(name) }

// Rename implements fs.Driver.
func (p *Posix) Rename(_ context.Context, from, to string) error {
	return p.root.Rename(from, to, false)
}

// Replace implements fs.Driver.
func (p *Posix) Replace(_ context.Context, from, to string) error {
	return p.root.Rename(from, to, true)
}

// Chmod implements fs.Driver.
func (p *Posix) Chmod(_ context.Context, name string, mode iofs.FileMode) error {
	return p.root.Chmod(name, mode.Perm())
}

// Open implements fs.Driver.
func (p *Posix) Open(_ context.Context, name string) (fs.ReadFile, error) {
	f, err := p.root.Open(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Writer is a posixfs write: it stores the streamed adler32 with the data.
type Writer struct {
	*rootfs.File
	// BeforeCommit, when set, runs on the synced temporary just before it
	// is published; an error aborts the write. Drivers built on this one
	// use it (the nearline driver drops a stale tape copy).
	BeforeCommit func() error
}

// Commit implements fs.Writer.
func (w *Writer) Commit(expectSize int64, replace bool) error {
	if expectSize >= 0 && w.Written() != expectSize {
		return w.File.Commit(expectSize, replace) // reports the mismatch and aborts
	}
	// The mtime keying the checksum is final once the data is synced.
	if err := w.Sync(); err != nil {
		w.Abort()
		return err
	}
	if st, err := w.Stat(); err == nil {
		// Best effort: a filesystem without user xattrs still gets the
		// right answer, recomputed when asked.
		_ = w.SetXattr(sumxattr.Name, sumxattr.Encode(w.Adler32(), st.ModTime))
	}
	if w.BeforeCommit != nil {
		if err := w.BeforeCommit(); err != nil {
			w.Abort()
			return err
		}
	}
	return w.File.Commit(expectSize, replace)
}

// Create implements fs.Driver.
func (p *Posix) Create(_ context.Context, name string) (fs.Writer, error) {
	return p.CreateWriter(name)
}

// CreateWriter is Create with the concrete type, for drivers built on this
// one.
func (p *Posix) CreateWriter(name string) (*Writer, error) {
	f, err := p.root.Create(name, filePerm)
	if err != nil {
		return nil, err
	}
	return &Writer{File: f}, nil
}

// StoredAdler32 returns the stored checksum of name if it is still valid
// for the file's mtime, or "".
func (p *Posix) StoredAdler32(name string) (string, rootfs.Info, error) {
	in, err := p.root.Lstat(name)
	if err != nil {
		return "", in, err
	}
	if in.IsDir() {
		return "", in, &iofs.PathError{Op: "adler32", Path: name, Err: syscall.EISDIR}
	}
	if in.IsLink() {
		return "", in, &iofs.PathError{Op: "adler32", Path: name, Err: rootfs.ErrSymlink}
	}
	if v, err := p.root.GetXattr(name, sumxattr.Name); err == nil {
		if sum, ok := sumxattr.Decode(v, in.ModTime); ok {
			return sum, in, nil
		}
	} else if errors.Is(err, rootfs.ErrHardLink) || errors.Is(err, rootfs.ErrNotRegular) {
		return "", in, err
	}
	return "", in, nil
}

// Adler32 implements fs.Checksummer.
func (p *Posix) Adler32(_ context.Context, name string, compute bool) (string, error) {
	sum, in, err := p.StoredAdler32(name)
	if err != nil || sum != "" || !compute {
		return sum, err
	}
	f, err := p.root.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := adler32.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("adler32 %s: %w", name, err)
	}
	sum = fmt.Sprintf("%08x", h.Sum32())
	// Best effort, as in Commit.
	_ = p.root.SetXattr(name, sumxattr.Name, sumxattr.Encode(sum, in.ModTime))
	return sum, nil
}

// Used implements fs.SpaceReporter: the sum of regular file sizes,
// temporaries excluded (uploads in progress are accounted as reservations).
func (p *Posix) Used(ctx context.Context) (int64, error) {
	var n int64
	err := p.root.Walk("", func(name string, in rootfs.Info) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if in.Mode.IsRegular() && !rootfs.IsReserved(name) {
			n += in.Size
		}
		return nil
	})
	return n, err
}

// Sweep implements fs.Sweeper.
func (p *Posix) Sweep(_ context.Context, keep func(name string) bool) (int, error) {
	return p.root.Sweep(keep)
}

var (
	_ fs.Driver        = (*Posix)(nil)
	_ fs.Checksummer   = (*Posix)(nil)
	_ fs.SpaceReporter = (*Posix)(nil)
	_ fs.Sweeper       = (*Posix)(nil)
)
