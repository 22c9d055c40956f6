package rootfs

import (
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
	iofs "io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrSizeMismatch: Commit was asked to verify a size the data does not have.
var ErrSizeMismatch = errors.New("written size differs from the expected size")

// File is a write in progress, made by Create. Its bytes go to a temporary
// file in the target's directory; the target name is untouched until
// Commit. A File is used by one goroutine.
type File struct {
	r    *Root
	name string // target name
	tmp  string // temporary's last element
	dfd  int    // target directory, O_RDONLY (for renameat and fsync)
	f    *os.File
	n    int64
	sum  hash.Hash32 // nil for CreateUnsummed
	done bool
	// synced: Sync succeeded and no data, mode or time changed since, so
	// Commit need not fsync again (an fsync of an unchanged file still
	// costs a journal commit, a third of a small file's write).
	synced bool
}

// Create starts writing name with permission bits perm. The directory of
// name must exist. Nothing is visible under name until Commit; Abort (or a
// crash, see Sweep) leaves the previous content of name as it was.
func (r *Root) Create(name string, perm iofs.FileMode) (*File, error) {
	f, err := r.CreateUnsummed(name, perm)
	if err != nil {
		return nil, err
	}
	f.sum = adler32.New()
	return f, nil
}

// CreateUnsummed is Create for a caller that checksums the stream itself:
// Adler32 is then empty, and ReadFrom lets the kernel copy from a file
// (copy_file_range) instead of passing the bytes through user space.
func (r *Root) CreateUnsummed(name string, perm iofs.FileMode) (*File, error) {
	name, err := CleanName(name)
	if err != nil {
		return nil, perr("create", name, err)
	}
	if name == "" {
		return nil, perr("create", name, syscall.EISDIR)
	}
	dfd, _, err := r.parent("create", name)
	if err != nil {
		return nil, err
	}
	tmp := tmpPrefix + randomHex()
	// A single fresh element with O_EXCL|O_NOFOLLOW below a confined
	// directory descriptor: plain openat cannot leave the tree here.
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		unix.Close(dfd)
		return nil, perr("create", name, err)
	}
	return &File{r: r, name: name, tmp: tmp, dfd: dfd, f: os.NewFile(uintptr(fd), name)}, nil
}

// Write appends to the temporary file.
func (f *File) Write(p []byte) (int, error) {
	if f.done {
		return 0, perr("write", f.name, os.ErrClosed)
	}
	n, err := f.f.Write(p)
	f.n += int64(n)
	f.synced = false
	if f.sum != nil {
		f.sum.Write(p[:n])
	}
	if err != nil {
		return n, perr("write", f.name, errors.Unwrap(err))
	}
	return n, nil
}

// ReadFrom appends what src yields. Without a running sum (CreateUnsummed)
// the kernel copies from a file source directly.
func (f *File) ReadFrom(src io.Reader) (int64, error) {
	if f.done {
		return 0, perr("write", f.name, os.ErrClosed)
	}
	if f.sum != nil {
		return io.Copy(struct{ io.Writer }{f}, src)
	}
	n, err := f.f.ReadFrom(src)
	f.n += n
	f.synced = false
	if err != nil {
		var pe *iofs.PathError
		if errors.As(err, &pe) && pe.Path == f.name {
			err = pe.Err
		}
		return n, perr("write", f.name, err)
	}
	return n, nil
}

// Fd returns the temporary file's descriptor, for hints such as
// sync_file_range. The File keeps owning it: never close it.
func (f *File) Fd() uintptr { return f.f.Fd() }

// Chmod sets the permission bits of the temporary, so a umask cannot
// narrow what is published.
func (f *File) Chmod(perm iofs.FileMode) error {
	f.synced = false
	if err := unix.Fchmod(int(f.f.Fd()), uint32(perm.Perm())); err != nil {
		return perr("chmod", f.name, err)
	}
	return nil
}

// Written returns the number of bytes written so far.
func (f *File) Written() int64 { return f.n }

// Adler32 returns the adler32 of the bytes written so far, as 8 lowercase
// hex digits ("" for CreateUnsummed).
func (f *File) Adler32() string {
	if f.sum == nil {
		return ""
	}
	return fmt.Sprintf("%08x", f.sum.Sum32())
}

// SetXattr sets an extended attribute on the temporary file, so it is
// published together with the content at Commit. An attribute set after
// Sync is not fsynced on its own: attributes are caches (a checksum keyed
// on the mtime), recomputed if a crash loses them.
func (f *File) SetXattr(attr string, val []byte) error {
	if f.done {
		return perr("setxattr", f.name, os.ErrClosed)
	}
	if err := unix.Fsetxattr(int(f.f.Fd()), attr, val, 0); err != nil {
		return perr("setxattr", f.name, err)
	}
	return nil
}

// Sync flushes the temporary file to stable storage. Commit does it too,
// unless nothing but attributes changed since a Sync; callers that set
// attributes keyed on the modification time call it first, because the
// time is only final once the data is written.
func (f *File) Sync() error {
	if err := f.f.Sync(); err != nil {
		return perr("fsync", f.name, errors.Unwrap(err))
	}
	f.synced = true
	return nil
}

// SetModTime sets the modification (and access) time of the temporary
// file: a recall restores the time that dates the content.
func (f *File) SetModTime(t time.Time) error {
	f.synced = false
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	if err := unix.UtimesNanoAt(int(f.f.Fd()), "", ts, unix.AT_EMPTY_PATH); err != nil {
		return perr("chtimes", f.name, err)
	}
	return nil
}

// Stat describes the temporary file.
func (f *File) Stat() (Info, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.f.Fd()), &st); err != nil {
		return Info{}, perr("stat", f.name, err)
	}
	_, base := split(f.name)
	return infoOf(base, &st), nil
}

// Commit publishes the data under the name: the temporary file is fsynced
// (unless Sync did it and only attributes changed since),
// checked against expectSize when it is >= 0 (ErrSizeMismatch otherwise,
// and the write is aborted), and renamed over the name, then the
// directory is fsynced. With replace false an existing name is an error
// (ErrExist). With replace true an existing file, hard link or symbolic
// link is replaced as a directory entry, never written through; a
// directory is never replaced. On any error the temporary is removed and
// the name keeps its previous content.
func (f *File) Commit(expectSize int64, replace bool) error {
	if f.done {
		return perr("commit", f.name, os.ErrClosed)
	}
	f.done = true
	defer unix.Close(f.dfd)
	fail := func(err error) error {
		f.f.Close()
		_ = unix.Unlinkat(f.dfd, f.tmp, 0)
		return err
	}
	if expectSize >= 0 && f.n != expectSize {
		return fail(perr("commit", f.name, fmt.Errorf("%w: %d bytes written, %d expected", ErrSizeMismatch, f.n, expectSize)))
	}
	if !f.synced {
		if err := f.f.Sync(); err != nil {
			return fail(perr("fsync", f.name, errors.Unwrap(err)))
		}
	}
	if err := f.f.Close(); err != nil {
		return fail(perr("close", f.name, errors.Unwrap(err)))
	}
	_, base := split(f.name)
	flags := uint(unix.RENAME_NOREPLACE)
	if replace {
		flags = 0
		var st unix.Stat_t
		if err := unix.Fstatat(f.dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return fail(perr("commit", f.name, syscall.EISDIR))
		}
	}
	if err := unix.Renameat2(f.dfd, f.tmp, f.dfd, base, flags); err != nil {
		return fail(perr("commit", f.name, err))
	}
	if err := unix.Fsync(f.dfd); err != nil {
		return perr("fsync", f.name, err)
	}
	return nil
}

// Abort discards the write; the name is untouched. Abort after Commit
// does nothing, so it can be deferred.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	defer unix.Close(f.dfd)
	f.f.Close()
	if err := unix.Unlinkat(f.dfd, f.tmp, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return perr("abort", f.name, err)
	}
	return nil
}

// Walk calls fn for every entry below directory name (not name itself),
// parents before children, with names relative to the root. It does not
// follow links and does not descend into other filesystems. Reserved names
// are included (Sweep needs them). An error from fn stops the walk.
func (r *Root) Walk(name string, fn func(name string, in Info) error) error {
	name, err := CleanName(name)
	if err != nil {
		return perr("walk", name, err)
	}
	fd, err := r.openDir("walk", name)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "dir")
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return perr("walk", name, errors.Unwrap(err))
	}
	var subdirs []string
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		in := infoOf(n, &st)
		if in.IsDir() && st.Dev != r.dev {
			in.Mode = iofs.ModeIrregular
		}
		child := n
		if name != "" {
			child = name + "/" + n
		}
		if err := fn(child, in); err != nil {
			f.Close()
			return err
		}
		if in.IsDir() {
			subdirs = append(subdirs, child)
		}
	}
	f.Close() // before descending: a deep tree must not hold one fd per level
	for _, d := range subdirs {
		if err := r.Walk(d, fn); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Sweep removes the temporaries an interrupted process left below the
// root: every in-progress Create, and every other reserved name for which
// keep (nil: none) returns false. It returns how many it removed.
func (r *Root) Sweep(keep func(name string) bool) (int, error) {
	n := 0
	err := r.Walk("", func(name string, in Info) error {
		_, base := split(name)
		if !strings.HasPrefix(base, ReservedPrefix) || in.IsDir() {
			return nil
		}
		if !strings.HasPrefix(base, tmpPrefix) && keep != nil && keep(name) {
			return nil
		}
		if err := r.Remove(name); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	return n, err
}
