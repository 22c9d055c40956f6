// Package nearline is a storage-element driver that emulates a tape tier on
// top of a POSIX disk tier, for testing tape workflows (srmBringOnline,
// file locality, purge) without tape hardware.
//
// Every file lives on disk under the area root. After srmPutDone, Migrate
// copies it to the tape directory (same relative name). Purge replaces the
// disk copy by an empty stub (size kept in the xattr user.nearline.size,
// mtime and checksum preserved): the file is then NEARLINE, Open fails with
// fs.ErrNotOnline, and Recall copies it back after the configured delay.
// Both tiers are accessed through srm/fs/rootfs roots, and every write
// (migrate, purge, recall) is atomic: a temporary, fsync, rename.
package nearline

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dynamo-go/dynamo/internal/sumxattr"
	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/posixfs"
	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// xattrStub marks a disk stub and holds the real size.
const xattrStub = "user.nearline.size"

// Nearline is the driver.
type Nearline struct {
	*posixfs.Posix
	tape  *posixfs.Posix
	delay time.Duration

	mu      sync.Mutex
	recalls map[string]*recall
}

type recall struct {
	done chan struct{}
	err  error
}

// New returns a driver for the disk root and tape directory (created if
// missing); recalls take delay. The two trees must be apart: a tape
// directory inside the disk root would let clients read, overwrite or
// delete the tape copies through the SE (and the disk root inside the tape
// directory would make every upload look migrated).
func New(root, tapeDir string, delay time.Duration) (*Nearline, error) {
	if err := Disjoint(root, tapeDir); err != nil {
		return nil, fmt.Errorf("nearline: %w", err)
	}
	if err := makeTapeDir(tapeDir); err != nil {
		return nil, fmt.Errorf("nearline: tape directory: %w", err)
	}
	disk, err := posixfs.New(root)
	if err != nil {
		return nil, fmt.Errorf("nearline: root: %w", err)
	}
	tape, err := posixfs.New(tapeDir)
	if err != nil {
		disk.Close()
		return nil, fmt.Errorf("nearline: tape directory: %w", err)
	}
	return &Nearline{Posix: disk, tape: tape, delay: delay, recalls: map[string]*recall{}}, nil
}

// ErrOverlap: the tape directory and the disk root are nested.
var ErrOverlap = errors.New("the tape directory and the area root must not contain each other")

// Disjoint checks that the configured directories root and tapeDir (the
// operator's absolute paths, links in them resolved as far as they exist)
// do not contain each other.
func Disjoint(root, tapeDir string) error {
	if !filepath.IsAbs(root) || !filepath.IsAbs(tapeDir) {
		return errors.New("the tape directory and the area root must be absolute paths")
	}
	a, b := resolveExisting(root), resolveExisting(tapeDir)
	if within(a, b) || within(b, a) {
		return ErrOverlap
	}
	return nil
}

// resolveExisting resolves the links of the longest existing ancestor of
// p (configuration paths only) and appends the rest.
func resolveExisting(p string) string {
	p = filepath.Clean(p)
	rest := ""
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest)
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// makeTapeDir creates the configured tape directory and its missing
// parents: the longest existing ancestor (the operator's path, links
// allowed like any configured root) is opened as a confined root, and the
// rest is made below it without following any link.
func makeTapeDir(dir string) error {
	dir = filepath.Clean(dir)
	base, rest := dir, ""
	for {
		if _, err := os.Lstat(base); err == nil {
			break
		}
		parent := filepath.Dir(base)
		if parent == base {
			break
		}
		rest = path.Join(filepath.Base(base), rest)
		base = parent
	}
	if rest == "" {
		return nil // exists; posixfs.New checks it is a directory
	}
	r, err := rootfs.Open(base)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.MkdirAll(rest, 0o755)
}

// Close releases both roots.
func (n *Nearline) Close() error { return errors.Join(n.Posix.Close(), n.tape.Close()) }

func (n *Nearline) stubSize(name string) (int64, bool) {
	v, err := n.Root().GetXattr(name, xattrStub)
	if err != nil {
		return 0, false
	}
	s, err := strconv.ParseInt(string(v), 10, 64)
	return s, err == nil
}

func (n *Nearline) decorate(name string, fi fs.FileInfo) fs.FileInfo {
	if !fi.Mode.IsRegular() {
		return fi
	}
	if size, stub := n.stubSize(name); stub {
		fi.Size, fi.Locality = size, fs.Nearline
		return fi
	}
	if in, err := n.tape.Root().Lstat(name); err == nil && in.Mode.IsRegular() && in.Size == fi.Size {
		fi.Locality = fs.OnlineAndNearline
	}
	return fi
}

// Stat implements fs.Driver with locality.
func (n *Nearline) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	fi, err := n.Posix.Stat(ctx, name)
	if err != nil {
		return fi, err
	}
	return n.decorate(name, fi), nil
}

// List implements fs.Driver with locality.
func (n *Nearline) List(ctx context.Context, name string) ([]fs.FileInfo, error) {
	l, err := n.Posix.List(ctx, name)
	for i := range l {
		l[i] = n.decorate(join(name, l[i].Name), l[i])
	}
	return l, err
}

func join(dir, base string) string {
	if dir == "" {
		return base
	}
	return dir + "/" + base
}

func parent(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}

// Open implements fs.Driver: stubs are not readable.
func (n *Nearline) Open(ctx context.Context, name string) (fs.ReadFile, error) {
	if _, stub := n.stubSize(name); stub {
		return nil, &iofs.PathError{Op: "open", Path: name, Err: fs.ErrNotOnline}
	}
	return n.Posix.Open(ctx, name)
}

// Create implements fs.Driver: publishing new content first drops the tape
// copy of the old one, which would otherwise pass for a copy of the new.
func (n *Nearline) Create(_ context.Context, name string) (fs.Writer, error) {
	w, err := n.CreateWriter(name)
	if err != nil {
		return nil, err
	}
	w.BeforeCommit = func() error { return n.removeTape(name) }
	return w, nil
}

// removeTape removes the tape copy of name, if any.
func (n *Nearline) removeTape(name string) error {
	if err := n.tape.Root().Remove(name); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("nearline: removing the tape copy: %w", err)
	}
	return nil
}

// Remove implements fs.Driver; the tape copy goes too. A tape copy that
// cannot be removed is reported: it would come back as a stale copy.
func (n *Nearline) Remove(ctx context.Context, name string) error {
	if err := n.Posix.Remove(ctx, name); err != nil {
		return err
	}
	return n.removeTape(name)
}

// Replace implements fs.Driver: the tape copy of the replaced file is
// dropped first (Migrate makes the new one).
func (n *Nearline) Replace(ctx context.Context, from, to string) error {
	if err := n.removeTape(to); err != nil {
		return err
	}
	return n.Posix.Replace(ctx, from, to)
}

// Rename implements fs.Driver; the tape copy follows. The tape side moves
// first and is moved back if the disk rename fails, so a file never ends
// with its tape copy under another name.
func (n *Nearline) Rename(ctx context.Context, from, to string) error {
	tr := n.tape.Root()
	// The disk side is checked first: the tape tier must not get
	// directories for a rename the disk refuses.
	if _, err := n.Root().Lstat(from); err != nil {
		return err
	}
	if in, err := n.Root().Lstat(parent(to)); err != nil {
		return err
	} else if !in.IsDir() {
		return &iofs.PathError{Op: "rename", Path: to, Err: syscall.ENOTDIR}
	}
	_, err := tr.Lstat(from)
	onTape := err == nil
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("nearline: tape copy: %w", err)
	}
	if onTape {
		if err := n.mkdirAllTape(parent(to)); err != nil {
			return err
		}
		if err := tr.Rename(from, to, false); err != nil {
			return fmt.Errorf("nearline: moving the tape copy: %w", err)
		}
	}
	if err := n.Posix.Rename(ctx, from, to); err != nil {
		if onTape {
			if berr := tr.Rename(to, from, false); berr != nil {
				return errors.Join(err, fmt.Errorf("nearline: moving the tape copy back: %w", berr))
			}
		}
		return err
	}
	return nil
}

func (n *Nearline) mkdirAllTape(dir string) error {
	if dir == "" {
		return nil
	}
	if in, err := n.tape.Root().Lstat(dir); err == nil {
		if !in.IsDir() {
			return fmt.Errorf("nearline: tape directory: %w", &iofs.PathError{Op: "mkdir", Path: dir, Err: iofs.ErrExist})
		}
		return nil
	}
	if err := n.mkdirAllTape(parent(dir)); err != nil {
		return err
	}
	if err := n.tape.Root().Mkdir(dir, 0o755); err != nil && !errors.Is(err, iofs.ErrExist) {
		return fmt.Errorf("nearline: tape directory: %w", err)
	}
	return nil
}

// copyInto copies src into an atomic write on dst (a posixfs driver),
// keeping mtime and stored checksum.
func copyInto(src *rootfs.Root, dst *posixfs.Posix, name string, mtime time.Time, extra func(w *posixfs.Writer) error) error {
	in, err := src.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	w, err := dst.CreateWriter(name)
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := io.Copy(w, in); err != nil {
		return err
	}
	if err := w.SetModTime(mtime); err != nil {
		return err
	}
	if extra != nil {
		if err := extra(w); err != nil {
			return err
		}
	}
	return w.Commit(-1, true)
}

// Migrate implements fs.Stager: copy the disk file to tape.
func (n *Nearline) Migrate(_ context.Context, name string) error {
	in, err := n.Root().Lstat(name)
	if err != nil {
		return err
	}
	if !in.Mode.IsRegular() {
		return &iofs.PathError{Op: "migrate", Path: name, Err: rootfs.ErrNotRegular}
	}
	if err := n.mkdirAllTape(parent(name)); err != nil {
		return err
	}
	return copyInto(n.Root(), n.tape, name, in.ModTime, nil)
}

// Purge implements fs.Stager: the disk copy becomes an empty stub carrying
// the size, the mtime and the stored checksum.
func (n *Nearline) Purge(_ context.Context, name string) error {
	in, err := n.Root().Lstat(name)
	if err != nil {
		return err
	}
	if !in.Mode.IsRegular() {
		return &iofs.PathError{Op: "purge", Path: name, Err: rootfs.ErrNotRegular}
	}
	if _, stub := n.stubSize(name); stub {
		return nil
	}
	if ts, err := n.tape.Root().Lstat(name); err != nil || ts.Size != in.Size {
		return fs.ErrLastCopy
	}
	sum, _, _ := n.StoredAdler32(name)
	w, err := n.CreateWriter(name)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := w.SetXattr(xattrStub, []byte(strconv.FormatInt(in.Size, 10))); err != nil {
		return fmt.Errorf("nearline: marking stub: %w", err)
	}
	// Keep mtime: it dates the content, and the stored checksum is keyed
	// on it.
	if err := w.SetModTime(in.ModTime); err != nil {
		return err
	}
	if sum != "" {
		_ = w.SetXattr(sumxattr.Name, sumxattr.Encode(sum, in.ModTime))
	}
	// The rootfs commit, not the posixfs one: the stub must not get the
	// checksum of its (empty) bytes.
	return w.File.Commit(0, true)
}

// Recall implements fs.Stager: after the delay the tape copy is copied back
// over the stub. Concurrent recalls of one file share one operation.
func (n *Nearline) Recall(ctx context.Context, name string) (<-chan struct{}, *error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r, ok := n.recalls[name]; ok {
		return r.done, &r.err
	}
	r := &recall{done: make(chan struct{})}
	if _, stub := n.stubSize(name); !stub {
		close(r.done)
		return r.done, &r.err
	}
	n.recalls[name] = r
	go func() {
		defer func() {
			n.mu.Lock()
			delete(n.recalls, name)
			n.mu.Unlock()
			close(r.done)
		}()
		select {
		case <-time.After(n.delay):
		case <-ctx.Done():
			r.err = ctx.Err()
			return
		}
		r.err = n.restore(name)
	}()
	return r.done, &r.err
}

// restore copies the tape copy over the stub, atomically: a failed recall
// leaves the stub as it was.
func (n *Nearline) restore(name string) error {
	in, err := n.Root().Lstat(name)
	if err != nil {
		return err
	}
	size, _ := n.stubSize(name)
	ts, err := n.tape.Root().Lstat(name)
	if err != nil {
		return fmt.Errorf("nearline: tape copy: %w", err)
	}
	if ts.Size != size {
		return fmt.Errorf("nearline: the tape copy has %d bytes, the file %d", ts.Size, size)
	}
	return copyInto(n.tape.Root(), n.Posix, name, in.ModTime, nil)
}

var (
	_ fs.Driver      = (*Nearline)(nil)
	_ fs.Stager      = (*Nearline)(nil)
	_ fs.Checksummer = (*Nearline)(nil)
)

// Adler32 implements fs.Checksummer. A stub's data is on tape only, so its
// checksum is never computed from the (empty) disk copy: only a stored
// value is returned.
func (n *Nearline) Adler32(ctx context.Context, name string, compute bool) (string, error) {
	if _, stub := n.stubSize(name); stub {
		compute = false
	}
	return n.Posix.Adler32(ctx, name, compute)
}
