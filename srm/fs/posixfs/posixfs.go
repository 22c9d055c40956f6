// Package posixfs is the storage-element driver for POSIX filesystems. It
// keeps each file's adler32 in the extended attribute user.adler32 together
// with the mtime it was computed for ("<hex> <mtime-ns>"), so a file changed
// behind the SE's back is noticed.
//
// POSIX ACLs are not managed: StoRM's JiT/AoT ACLs map grid users to local
// accounts, and this SE serves every file as its own process user, so the
// ACLs would protect nothing; authorization is done per storage area.
package posixfs

import (
	"context"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dynamo-go/dynamo/srm/fs"
)

// XattrAdler32 is the extended attribute holding the checksum.
const XattrAdler32 = "user.adler32"

// Posix is the driver. The zero value is ready to use.
type Posix struct{}

// New returns a POSIX driver.
func New() *Posix { return &Posix{} }

func info(name string, st os.FileInfo) fs.FileInfo {
	fi := fs.FileInfo{Name: name, Size: st.Size(), Mode: st.Mode(), ModTime: st.ModTime(), Ctime: st.ModTime()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		fi.Ctime = time.Unix(sys.Ctim.Sec, sys.Ctim.Nsec)
	}
	if st.IsDir() {
		fi.Size = 0
		fi.Locality = fs.None
	}
	return fi
}

// Stat implements fs.Driver.
func (*Posix) Stat(_ context.Context, p string) (fs.FileInfo, error) {
	st, err := os.Stat(p)
	if err != nil {
		return fs.FileInfo{}, err
	}
	return info(filepath.Base(p), st), nil
}

// List implements fs.Driver.
func (*Posix) List(_ context.Context, p string) ([]fs.FileInfo, error) {
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	out := make([]fs.FileInfo, 0, len(ents))
	for _, e := range ents {
		st, err := os.Stat(filepath.Join(p, e.Name()))
		if err != nil {
			continue // vanished or dangling symlink: not listable
		}
		out = append(out, info(e.Name(), st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Mkdir implements fs.Driver.
func (*Posix) Mkdir(_ context.Context, p string) error { return os.Mkdir(p, 0o755) }

// Remove implements fs.Driver.
func (*Posix) Remove(_ context.Context, p string) error { return os.Remove(p) }

// Rename implements fs.Driver; it refuses to replace an existing target.
func (*Posix) Rename(_ context.Context, from, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return &os.PathError{Op: "rename", Path: to, Err: iofs.ErrExist}
	}
	return os.Rename(from, to)
}

// Chmod implements fs.Driver.
func (*Posix) Chmod(_ context.Context, p string, mode iofs.FileMode) error {
	return os.Chmod(p, mode.Perm())
}

// Open implements fs.Driver.
func (*Posix) Open(_ context.Context, p string) (fs.ReadFile, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: p, Err: syscall.EISDIR}
	}
	return f, nil
}

// Create implements fs.Driver. A stale checksum attribute is removed.
func (*Posix) Create(_ context.Context, p string) (io.WriteCloser, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	_ = unix.Fremovexattr(int(f.Fd()), XattrAdler32)
	return f, nil
}

// Adler32 implements fs.Checksummer.
func (*Posix) Adler32(_ context.Context, p string, compute bool) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return "", &os.PathError{Op: "adler32", Path: p, Err: syscall.EISDIR}
	}
	buf := make([]byte, 64)
	if n, err := unix.Getxattr(p, XattrAdler32, buf); err == nil {
		sum, mt, ok := strings.Cut(string(buf[:n]), " ")
		if ok && mt == strconv.FormatInt(st.ModTime().UnixNano(), 10) && len(sum) == 8 {
			return sum, nil
		}
	}
	if !compute {
		return "", nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := adler32.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("adler32 %s: %w", p, err)
	}
	sum := fmt.Sprintf("%08x", h.Sum32())
	// Storing is best effort: a filesystem without user xattrs still gets
	// the right answer, just recomputed next time.
	_ = unix.Setxattr(p, XattrAdler32, []byte(sum+" "+strconv.FormatInt(st.ModTime().UnixNano(), 10)), 0)
	return sum, nil
}

// Used implements fs.SpaceReporter: the sum of regular file sizes below root.
func (*Posix) Used(ctx context.Context, root string) (int64, error) {
	var n int64
	err := filepath.WalkDir(root, func(_ string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.Type().IsRegular() {
			if st, err := d.Info(); err == nil {
				n += st.Size()
			}
		}
		return nil
	})
	return n, err
}

var (
	_ fs.Driver        = (*Posix)(nil)
	_ fs.Checksummer   = (*Posix)(nil)
	_ fs.SpaceReporter = (*Posix)(nil)
)
