package local

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/internal/sumxattr"
)

// storeSum records sum on f in the format the storage element's POSIX
// driver reads too (internal/sumxattr). Best effort: filesystems without
// user xattrs (some tmpfs, NFS) just recompute on demand.
func storeSum(f *os.File, fi fs.FileInfo, sum string) {
	_ = unix.Fsetxattr(int(f.Fd()), sumxattr.Name, sumxattr.Encode(sum, fi.ModTime()), 0)
}

// cachedSum returns the sum cached on path if it is still valid for the
// file's mtime, reading the attribute this driver wrote before it shared
// the storage element's when the shared one is missing.
func cachedSum(path string, fi fs.FileInfo) (string, bool) {
	buf := make([]byte, 64)
	if n, err := unix.Getxattr(path, sumxattr.Name, buf); err == nil {
		return sumxattr.Decode(buf[:n], fi.ModTime())
	}
	if n, err := unix.Getxattr(path, sumxattr.LegacyName, buf); err == nil {
		return sumxattr.DecodeLegacy(buf[:n], fi.Size(), fi.ModTime())
	}
	return "", false
}

// Checksum implements driver.Checksummer for adler32, from the cached
// attribute when it is still valid, otherwise by reading the file.
func (l *Local) Checksum(ctx context.Context, p, algo string) (string, error) {
	a, rel, err := l.abs(ctx, p)
	if err != nil {
		return "", err
	}
	if algo != driver.AlgoAdler32 {
		return "", driver.NewError(ctx, "checksum", driver.JoinURLPath(l.url, rel), driver.ErrUnsupported, "", fmt.Errorf("algorithm %q", algo))
	}
	f, err := os.Open(a)
	if err != nil {
		return "", l.fail(ctx, "checksum", rel, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = syscall.EISDIR
	}
	if err != nil {
		return "", l.fail(ctx, "checksum", rel, err)
	}
	if s, ok := cachedSum(a, fi); ok {
		return s, nil
	}
	ar := driver.NewAdler32Reader(driver.ContextReader(ctx, f))
	if _, err := io.Copy(io.Discard, ar); err != nil {
		return "", l.fail(ctx, "checksum", rel, err)
	}
	storeSum(f, fi, ar.Sum())
	return ar.Sum(), nil
}

// Space implements driver.SpaceReporter from statfs of the filesystem
// holding p (or the root, if p does not exist yet).
func (l *Local) Space(ctx context.Context, p string) (driver.Space, error) {
	a, rel, err := l.abs(ctx, p)
	if err != nil {
		return driver.Space{}, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(a, &st); err != nil {
		if err2 := unix.Statfs(l.root, &st); err2 != nil {
			return driver.Space{}, l.fail(ctx, "space", rel, err)
		}
	}
	bs := int64(st.Bsize)
	return driver.Space{Total: int64(st.Blocks) * bs, Used: int64(st.Blocks-st.Bfree) * bs}, nil
}
