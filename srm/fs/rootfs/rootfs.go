// Package rootfs confines filesystem access to one directory tree. It is the
// only way the storage element touches disk: the srm/fs drivers (posixfs,
// nearline), the SRM methods, the HTTPS/WebDAV data plane and third-party
// copy all go through a Root.
//
// Confinement is by construction, not by checking paths: a Root holds a
// file descriptor of its directory, and every name is resolved by the
// kernel relative to it with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
// | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV). So, whatever a client or an
// attacker with shell access does inside the tree:
//
//   - no name resolves outside the root ("..", absolute names and escapes
//     racing a rename are refused by the kernel, not by string checks);
//   - symbolic links are never followed, neither in the middle of a name nor
//     at its end. A link is visible to Lstat and ReadDir as a link (mode
//     fs.ModeSymlink, size 0, its own times, no target metadata); Remove
//     deletes the link itself; every other operation on it fails with
//     ErrSymlink;
//   - no name crosses a mount point (ErrEscape), so a recursion built on
//     ReadDir never leaves the filesystem of the root;
//   - a regular file with more than one hard link is never opened, changed
//     or written through (ErrHardLink): its other name may be outside the
//     tree. It can still be listed, removed, or replaced by a new file;
//   - writes never modify a file in place: Create writes a temporary file in
//     the target directory, and Commit fsyncs it, renames it over the name
//     (replacing a file, hard link or symbolic link as a directory entry)
//     and fsyncs the directory.
//
// Names are slash-separated and relative to the root; "" (or ".") is the
// root itself. A name with an empty, "." or ".." element, a NUL byte or a
// leading slash is refused with ErrBadName: callers clean client input into
// this form first. Names beginning with ReservedPrefix are the package's own
// temporaries: ReadDir hides them and callers must refuse them from clients
// (see IsReserved).
//
// Errors are *fs.PathError values whose Path is the relative name, never a
// physical path; they wrap the io/fs sentinels, syscall errnos, or this
// package's sentinels, so callers map them with errors.Is. A Root is safe for
// concurrent use.
package rootfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sentinels of confinement refusals.
var (
	// ErrBadName: the name is not a clean relative name.
	ErrBadName = errors.New("not a clean relative name")
	// ErrSymlink: the name is or crosses a symbolic link, which is never
	// followed.
	ErrSymlink = errors.New("symbolic links are not followed")
	// ErrEscape: the name leaves the tree or crosses a mount point.
	ErrEscape = errors.New("name leaves the storage area or crosses a filesystem boundary")
	// ErrHardLink: the file has other hard links, possibly outside the tree.
	ErrHardLink = errors.New("file has other hard links and is not served")
	// ErrNotRegular: the name is not a regular file (a fifo, device, ...).
	ErrNotRegular = errors.New("not a regular file")
)

// ReservedPrefix starts the names of temporaries made by this package and
// by its users (upload staging). Such names are hidden from ReadDir, swept
// at start by Sweep, and must be refused from clients.
const ReservedPrefix = ".dynamo-"

// TempPrefix marks a Create in progress: never valid after a restart. It
// is the file-operation drivers' driver.TempPrefix too, so that a
// consistency scan of a directory that is both an SE area and a file://
// site classifies an interrupted write as a temporary, never as an orphan.
const TempPrefix = ReservedPrefix + "tmp."

const tmpPrefix = TempPrefix

// IsReserved reports whether any element of name is reserved.
func IsReserved(name string) bool {
	for _, e := range strings.Split(name, "/") {
		if strings.HasPrefix(e, ReservedPrefix) {
			return true
		}
	}
	return false
}

const resolveConfined = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// Root is an open directory tree.
type Root struct {
	fd  int      // O_PATH descriptor of the root directory
	dev uint64   // device of the root: recursions stay on it
	dir *os.File // keeps fd alive and closes it
}

// Open opens dir as a Root. dir itself may be reached through symbolic
// links (it is the administrator's configuration); nothing below it is.
func Open(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("rootfs: opening root: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rootfs: root: %w", err)
	}
	return &Root{fd: fd, dev: st.Dev, dir: os.NewFile(uintptr(fd), "root")}, nil
}

// Close releases the root's descriptor.
func (r *Root) Close() error { return r.dir.Close() }

// CleanName validates a relative name and returns it with "." mapped to "".
func CleanName(name string) (string, error) {
	if name == "" || name == "." {
		return "", nil
	}
	if strings.ContainsRune(name, 0) || strings.HasPrefix(name, "/") {
		return "", ErrBadName
	}
	for _, e := range strings.Split(name, "/") {
		if e == "" || e == "." || e == ".." {
			return "", ErrBadName
		}
	}
	return name, nil
}

// split returns the parent and the last element of a clean, non-root name.
func split(name string) (string, string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

func perr(op, name string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		err = fmt.Errorf("%w (%w)", ErrSymlink, err)
	case errors.Is(err, unix.EXDEV):
		err = ErrEscape
	}
	return &iofs.PathError{Op: op, Path: name, Err: err}
}

// openat resolves name confined below the root. The kernel answers EAGAIN
// when a rename raced the resolution; retrying is what it asks for.
func (r *Root) openat(name string, flags uint64, mode uint64) (int, error) {
	p := name
	if p == "" {
		p = "."
	}
	how := &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Mode: mode, Resolve: resolveConfined}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(r.fd, p, how)
		if errors.Is(err, unix.EAGAIN) && i < 16 {
			continue
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// openDir opens directory name (O_RDONLY, so it can be listed and fsynced).
func (r *Root) openDir(op, name string) (int, error) {
	fd, err := r.openat(name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, perr(op, name, err)
	}
	return fd, nil
}

// parent opens the parent directory of a clean non-root name.
func (r *Root) parent(op, name string) (int, string, error) {
	if name == "" {
		return -1, "", perr(op, name, syscall.EPERM)
	}
	dir, base := split(name)
	fd, err := r.openDir(op, dir)
	return fd, base, err
}

// Info describes one entry. It never describes the target of a link.
type Info struct {
	Name    string // last element
	Size    int64  // 0 for directories and links
	Mode    iofs.FileMode
	ModTime time.Time
	Ctime   time.Time
	Nlink   uint64
	Dev     uint64
}

// IsDir reports whether the entry is a directory.
func (i Info) IsDir() bool { return i.Mode.IsDir() }

// IsLink reports whether the entry is a symbolic link.
func (i Info) IsLink() bool { return i.Mode&iofs.ModeSymlink != 0 }

func infoOf(name string, st *unix.Stat_t) Info {
	in := Info{Name: name, Size: st.Size, Mode: iofs.FileMode(st.Mode & 0o777),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), Ctime: time.Unix(st.Ctim.Sec, st.Ctim.Nsec), Nlink: uint64(st.Nlink), Dev: st.Dev}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		in.Mode |= iofs.ModeDir
		in.Size = 0
	case unix.S_IFLNK:
		in.Mode |= iofs.ModeSymlink
		in.Size = 0
	case unix.S_IFREG:
	default:
		in.Mode |= iofs.ModeIrregular
		in.Size = 0
	}
	return in
}

// Lstat describes name without following it when it is a link.
func (r *Root) Lstat(name string) (Info, error) {
	name, err := CleanName(name)
	if err != nil {
		return Info{}, perr("stat", name, err)
	}
	var st unix.Stat_t
	if name == "" {
		if err := unix.Fstat(r.fd, &st); err != nil {
			return Info{}, perr("stat", name, err)
		}
		return infoOf("", &st), nil
	}
	dfd, base, err := r.parent("stat", name)
	if err != nil {
		return Info{}, err
	}
	defer unix.Close(dfd)
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return Info{}, perr("stat", name, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Dev != r.dev {
		return Info{}, perr("stat", name, ErrEscape)
	}
	return infoOf(base, &st), nil
}

// ScanDir calls fn for every entry of directory name, reserved names
// included, in the order the filesystem returns them, reading the
// directory in batches so that a huge directory is never held in memory:
// for scanners that must see interrupted writes (to report or remove
// them), never for clients. Entries are described as by ReadDir. An error
// from fn stops the scan and is returned unchanged.
func (r *Root) ScanDir(name string, fn func(Info) error) error {
	name, err := CleanName(name)
	if err != nil {
		return perr("readdir", name, err)
	}
	fd, err := r.openDir("readdir", name)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	for {
		names, rerr := f.Readdirnames(512)
		for _, n := range names {
			var st unix.Stat_t
			if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				continue // vanished meanwhile
			}
			in := infoOf(n, &st)
			if in.IsDir() && st.Dev != r.dev {
				in.Mode = iofs.ModeIrregular
			}
			if err := fn(in); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return perr("readdir", name, errors.Unwrap(rerr))
		}
	}
}

// ReadDir lists directory name sorted by name, without following links and
// hiding reserved names. A directory on another filesystem (a mount point)
// is listed with ModeIrregular so recursions do not descend into it.
func (r *Root) ReadDir(name string) ([]Info, error) {
	name, err := CleanName(name)
	if err != nil {
		return nil, perr("readdir", name, err)
	}
	fd, err := r.openDir("readdir", name)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, perr("readdir", name, errors.Unwrap(err))
	}
	out := make([]Info, 0, len(names))
	for _, n := range names {
		if strings.HasPrefix(n, ReservedPrefix) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // vanished meanwhile
		}
		in := infoOf(n, &st)
		if in.IsDir() && st.Dev != r.dev {
			in.Mode = iofs.ModeIrregular
		}
		out = append(out, in)
	}
	sortInfos(out)
	return out, nil
}

func sortInfos(l []Info) { sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name }) }

// openRegular opens a regular file with flags (O_RDONLY or O_RDWR), refusing
// links, non-regular files and files with other hard links.
func (r *Root) openRegular(op, name string, flags uint64) (*os.File, error) {
	name, err := CleanName(name)
	if err != nil {
		return nil, perr(op, name, err)
	}
	if name == "" {
		return nil, perr(op, name, syscall.EISDIR)
	}
	// O_NONBLOCK: opening a fifo must not hang the server.
	fd, err := r.openat(name, flags|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, perr(op, name, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, perr(op, name, err)
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		err = syscall.EISDIR
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = ErrNotRegular
	case st.Nlink > 1:
		err = ErrHardLink
	}
	if err != nil {
		unix.Close(fd)
		return nil, perr(op, name, err)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, perr(op, name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// Open opens regular file name for reading.
func (r *Root) Open(name string) (*os.File, error) {
	return r.openRegular("open", name, unix.O_RDONLY)
}

// OpenForUpdate opens regular file name for reading and writing in place.
// Only drivers' metadata operations (xattrs, truncating a disk copy that is
// also on tape) use it; content writes go through Create.
func (r *Root) OpenForUpdate(name string) (*os.File, error) {
	return r.openRegular("open", name, unix.O_RDWR)
}

// Mkdir creates directory name; its parent must exist.
func (r *Root) Mkdir(name string, perm iofs.FileMode) error {
	name, err := CleanName(name)
	if err != nil {
		return perr("mkdir", name, err)
	}
	if name == "" {
		return perr("mkdir", name, syscall.EEXIST)
	}
	dfd, base, err := r.parent("mkdir", name)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Mkdirat(dfd, base, uint32(perm.Perm())); err != nil {
		return perr("mkdir", name, err)
	}
	return nil
}

// MkdirAll creates directory name and its missing parents, one confined
// Mkdir per element, so no element is a link and none leaves the tree. An
// existing directory is not an error; an existing non-directory in the way
// gives ENOTDIR (a link: ErrSymlink).
func (r *Root) MkdirAll(name string, perm iofs.FileMode) error {
	name, err := CleanName(name)
	if err != nil {
		return perr("mkdir", name, err)
	}
	if name == "" {
		return nil
	}
	// Usually the directory is there already: one lookup instead of one
	// per element.
	if in, err := r.Lstat(name); err == nil && in.IsDir() {
		return nil
	}
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			continue
		}
		dir := name[:i]
		err := r.Mkdir(dir, perm)
		if err == nil {
			continue
		}
		if !errors.Is(err, iofs.ErrExist) {
			return err
		}
		in, err := r.Lstat(dir)
		switch {
		case err != nil:
			return err
		case in.IsLink():
			return perr("mkdir", dir, ErrSymlink)
		case !in.IsDir():
			return perr("mkdir", dir, syscall.ENOTDIR)
		}
	}
	return nil
}

// Statfs describes the filesystem of the root, which is the filesystem of
// every name below it (names never cross a mount point).
func (r *Root) Statfs() (unix.Statfs_t, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(r.fd, &st); err != nil {
		return st, perr("statfs", "", err)
	}
	return st, nil
}

// Remove deletes a file, a link (not its target) or an empty directory.
// The root cannot be removed.
func (r *Root) Remove(name string) error {
	name, err := CleanName(name)
	if err != nil {
		return perr("remove", name, err)
	}
	dfd, base, err := r.parent("remove", name)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return perr("remove", name, err)
	}
	flags := 0
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if st.Dev != r.dev {
			return perr("remove", name, ErrEscape)
		}
		flags = unix.AT_REMOVEDIR
	}
	if err := unix.Unlinkat(dfd, base, flags); err != nil {
		return perr("remove", name, err)
	}
	return unix.Fsync(dfd)
}

// Rename moves from to to. With replace false an existing to is an error
// (ErrExist); with replace true an existing file or link named to is
// replaced as a directory entry (never written through), and a directory
// is not. Both parents are fsynced.
func (r *Root) Rename(from, to string, replace bool) error {
	from, err := CleanName(from)
	if err != nil {
		return perr("rename", from, err)
	}
	to, err = CleanName(to)
	if err != nil {
		return perr("rename", to, err)
	}
	ffd, fbase, err := r.parent("rename", from)
	if err != nil {
		return err
	}
	defer unix.Close(ffd)
	tfd, tbase, err := r.parent("rename", to)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstatat(ffd, fbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return perr("rename", from, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Dev != r.dev {
		return perr("rename", from, ErrEscape)
	}
	flags := uint(unix.RENAME_NOREPLACE)
	if replace {
		flags = 0
		var tst unix.Stat_t
		if err := unix.Fstatat(tfd, tbase, &tst, unix.AT_SYMLINK_NOFOLLOW); err == nil && tst.Mode&unix.S_IFMT == unix.S_IFDIR {
			return perr("rename", to, syscall.EISDIR)
		}
	}
	if err := unix.Renameat2(ffd, fbase, tfd, tbase, flags); err != nil {
		return perr("rename", to, err)
	}
	return errors.Join(unix.Fsync(tfd), unix.Fsync(ffd))
}

// Chmod sets the permission bits of a directory or a regular file (not a
// link, not a file with other hard links).
func (r *Root) Chmod(name string, perm iofs.FileMode) error {
	fd, err := r.openMeta("chmod", name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		return perr("chmod", name, err)
	}
	return nil
}

// openMeta opens a directory or a singly-linked regular file for metadata
// changes (chmod, xattrs).
func (r *Root) openMeta(op, name string) (int, error) {
	name, err := CleanName(name)
	if err != nil {
		return -1, perr(op, name, err)
	}
	fd, err := r.openat(name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return -1, perr(op, name, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, perr(op, name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
	case unix.S_IFREG:
		if st.Nlink > 1 {
			err = ErrHardLink
		}
	default:
		err = ErrNotRegular
	}
	if err != nil {
		unix.Close(fd)
		return -1, perr(op, name, err)
	}
	return fd, nil
}

// GetXattr reads extended attribute attr of name; ENODATA when unset.
func (r *Root) GetXattr(name, attr string) ([]byte, error) {
	fd, err := r.openMeta("getxattr", name)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 256)
	for {
		n, err := unix.Fgetxattr(fd, attr, buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < 1<<16 {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, perr("getxattr", name, err)
		}
		return buf[:n], nil
	}
}

// SetXattr sets extended attribute attr of name.
func (r *Root) SetXattr(name, attr string, val []byte) error {
	fd, err := r.openMeta("setxattr", name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fsetxattr(fd, attr, val, 0); err != nil {
		return perr("setxattr", name, err)
	}
	return nil
}

// RemoveXattr removes extended attribute attr of name (no error when unset).
func (r *Root) RemoveXattr(name, attr string) error {
	fd, err := r.openMeta("removexattr", name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fremovexattr(fd, attr); err != nil && !errors.Is(err, unix.ENODATA) {
		return perr("removexattr", name, err)
	}
	return nil
}

// Chtimes sets the access and modification times of a regular file or
// directory.
func (r *Root) Chtimes(name string, atime, mtime time.Time) error {
	fd, err := r.openMeta("chtimes", name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	// The empty path with AT_EMPTY_PATH acts on the descriptor itself.
	if err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH); err != nil {
		return perr("chtimes", name, err)
	}
	return nil
}

func randomHex() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
