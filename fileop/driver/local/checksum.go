package local

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/internal/sumxattr"
	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// storeSum records sum, for the content as of mtime, on the open file fd
// in the format the storage element's POSIX driver reads too
// (internal/sumxattr). Best effort: filesystems without user xattrs (some
// tmpfs, NFS) just recompute on demand.
func storeSum(fd int, mtime time.Time, sum string) {
	_ = unix.Fsetxattr(fd, sumxattr.Name, sumxattr.Encode(sum, mtime), 0)
}

// cachedSum returns the sum cached on the open file f if it is still valid
// for in (f's description), reading the attribute this driver wrote before
// it shared the storage element's when the shared one is missing.
func cachedSum(f *os.File, in rootfs.Info) (string, bool) {
	buf := make([]byte, 64)
	if n, err := unix.Fgetxattr(int(f.Fd()), sumxattr.Name, buf); err == nil {
		return sumxattr.Decode(buf[:n], in.ModTime)
	}
	if n, err := unix.Fgetxattr(int(f.Fd()), sumxattr.LegacyName, buf); err == nil {
		return sumxattr.DecodeLegacy(buf[:n], in.Size, in.ModTime)
	}
	return "", false
}

// Checksum implements driver.Checksummer for adler32, from the cached
// attribute when it is still valid, otherwise by reading the file. The
// attribute and the bytes are read from one confined open file.
func (l *Local) Checksum(ctx context.Context, p, algo string) (string, error) {
	rel, err := l.rel(ctx, p)
	if err != nil {
		return "", err
	}
	if algo != driver.AlgoAdler32 {
		return "", driver.NewError(ctx, "checksum", driver.JoinURLPath(l.url, rel), driver.ErrUnsupported, "", fmt.Errorf("algorithm %q", algo))
	}
	f, err := l.openFile(rel)
	if err != nil {
		return "", l.fail(ctx, "checksum", rel, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", l.fail(ctx, "checksum", rel, err)
	}
	in := rootfs.Info{Size: st.Size, ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
	if s, ok := cachedSum(f, in); ok {
		return s, nil
	}
	ar := driver.NewAdler32Reader(driver.ContextReader(ctx, f))
	if _, err := io.Copy(io.Discard, ar); err != nil {
		return "", l.fail(ctx, "checksum", rel, err)
	}
	storeSum(int(f.Fd()), in.ModTime, ar.Sum())
	return ar.Sum(), nil
}

// Space implements driver.SpaceReporter from statfs of the site's
// filesystem: every name below the root is on it, since the driver never
// crosses a mount point.
func (l *Local) Space(ctx context.Context, p string) (driver.Space, error) {
	rel, err := l.rel(ctx, p)
	if err != nil {
		return driver.Space{}, err
	}
	r, err := l.openRoot(false)
	if err != nil {
		return driver.Space{}, l.fail(ctx, "space", rel, err)
	}
	defer r.Close()
	st, err := r.Statfs()
	if err != nil {
		return driver.Space{}, l.fail(ctx, "space", rel, err)
	}
	bs := int64(st.Bsize)
	return driver.Space{Total: int64(st.Blocks) * bs, Used: int64(st.Blocks-st.Bfree) * bs}, nil
}
