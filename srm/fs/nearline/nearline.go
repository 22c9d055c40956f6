// Package nearline is a storage-element driver that emulates a tape tier on
// top of a POSIX disk tier, for testing tape workflows (srmBringOnline,
// file locality, purge) without tape hardware.
//
// Every file lives on disk under the area root. After srmPutDone, Migrate
// copies it to the tape directory (same relative path). Purge truncates the
// disk copy to a stub (size kept in the xattr user.nearline.size, mtime
// preserved so the stored checksum stays valid): the file is then NEARLINE,
// Open fails with fs.ErrNotOnline, and Recall copies it back after the
// configured delay.
package nearline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/posixfs"
)

// xattrStub marks a disk stub and holds the real size.
const xattrStub = "user.nearline.size"

// Nearline is the driver.
type Nearline struct {
	*posixfs.Posix
	root, tape string
	delay      time.Duration

	mu      sync.Mutex
	recalls map[string]*recall
}

type recall struct {
	done chan struct{}
	err  error
}

// New returns a driver for the disk root and tape directory (created if
// missing); recalls take delay.
func New(root, tapeDir string, delay time.Duration) (*Nearline, error) {
	if err := os.MkdirAll(tapeDir, 0o755); err != nil {
		return nil, fmt.Errorf("nearline: tape directory: %w", err)
	}
	r, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("nearline: root: %w", err)
	}
	return &Nearline{Posix: posixfs.New(), root: r, tape: tapeDir, delay: delay, recalls: map[string]*recall{}}, nil
}

func (n *Nearline) tapePath(p string) (string, error) {
	rel, err := filepath.Rel(n.root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("nearline: %s is outside %s", p, n.root)
	}
	return filepath.Join(n.tape, rel), nil
}

func stubSize(p string) (int64, bool) {
	buf := make([]byte, 32)
	k, err := unix.Getxattr(p, xattrStub, buf)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(string(buf[:k]), 10, 64)
	return v, err == nil
}

func (n *Nearline) decorate(p string, fi fs.FileInfo) fs.FileInfo {
	if fi.IsDir() {
		return fi
	}
	if size, stub := stubSize(p); stub {
		fi.Size, fi.Locality = size, fs.Nearline
		return fi
	}
	if tp, err := n.tapePath(p); err == nil {
		if st, err := os.Stat(tp); err == nil && st.Size() == fi.Size {
			fi.Locality = fs.OnlineAndNearline
		}
	}
	return fi
}

// Stat implements fs.Driver with locality.
func (n *Nearline) Stat(ctx context.Context, p string) (fs.FileInfo, error) {
	fi, err := n.Posix.Stat(ctx, p)
	if err != nil {
		return fi, err
	}
	return n.decorate(p, fi), nil
}

// List implements fs.Driver with locality.
func (n *Nearline) List(ctx context.Context, p string) ([]fs.FileInfo, error) {
	l, err := n.Posix.List(ctx, p)
	for i := range l {
		l[i] = n.decorate(filepath.Join(p, l[i].Name), l[i])
	}
	return l, err
}

// Open implements fs.Driver: stubs are not readable.
func (n *Nearline) Open(ctx context.Context, p string) (fs.ReadFile, error) {
	if _, stub := stubSize(p); stub {
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotOnline)
	}
	return n.Posix.Open(ctx, p)
}

// Remove implements fs.Driver; the tape copy goes too.
func (n *Nearline) Remove(ctx context.Context, p string) error {
	if err := n.Posix.Remove(ctx, p); err != nil {
		return err
	}
	if tp, err := n.tapePath(p); err == nil {
		_ = os.Remove(tp)
	}
	return nil
}

// Rename implements fs.Driver; the tape copy follows.
func (n *Nearline) Rename(ctx context.Context, from, to string) error {
	if err := n.Posix.Rename(ctx, from, to); err != nil {
		return err
	}
	tf, err1 := n.tapePath(from)
	tt, err2 := n.tapePath(to)
	if err1 == nil && err2 == nil {
		if _, err := os.Stat(tf); err == nil {
			_ = os.MkdirAll(filepath.Dir(tt), 0o755)
			_ = os.Rename(tf, tt)
		}
	}
	return nil
}

// Migrate implements fs.Stager: copy the disk file to tape.
func (n *Nearline) Migrate(_ context.Context, p string) error {
	tp, err := n.tapePath(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(tp), 0o755); err != nil {
		return err
	}
	return copyFile(p, tp)
}

// Purge implements fs.Stager.
func (n *Nearline) Purge(_ context.Context, p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if _, stub := stubSize(p); stub {
		return nil
	}
	tp, err := n.tapePath(p)
	if err != nil {
		return err
	}
	if ts, err := os.Stat(tp); err != nil || ts.Size() != st.Size() {
		return fs.ErrLastCopy
	}
	if err := unix.Setxattr(p, xattrStub, []byte(strconv.FormatInt(st.Size(), 10)), 0); err != nil {
		return fmt.Errorf("nearline: marking stub: %w", err)
	}
	if err := os.Truncate(p, 0); err != nil {
		return err
	}
	// Keep mtime: it dates the content, and the stored checksum is keyed
	// on it.
	return os.Chtimes(p, st.ModTime(), st.ModTime())
}

// Recall implements fs.Stager: after the delay the tape copy is copied back
// over the stub. Concurrent recalls of one file share one operation.
func (n *Nearline) Recall(ctx context.Context, p string) (<-chan struct{}, *error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r, ok := n.recalls[p]; ok {
		return r.done, &r.err
	}
	r := &recall{done: make(chan struct{})}
	if _, stub := stubSize(p); !stub {
		close(r.done)
		return r.done, &r.err
	}
	n.recalls[p] = r
	go func() {
		defer func() {
			n.mu.Lock()
			delete(n.recalls, p)
			n.mu.Unlock()
			close(r.done)
		}()
		select {
		case <-time.After(n.delay):
		case <-ctx.Done():
			r.err = ctx.Err()
			return
		}
		r.err = n.restore(p)
	}()
	return r.done, &r.err
}

func (n *Nearline) restore(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	tp, err := n.tapePath(p)
	if err != nil {
		return err
	}
	if err := copyFile(tp, p); err != nil {
		return err
	}
	_ = unix.Removexattr(p, xattrStub)
	return os.Chtimes(p, st.ModTime(), st.ModTime())
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return errors.Join(out.Sync(), out.Close())
}

var (
	_ fs.Driver      = (*Nearline)(nil)
	_ fs.Stager      = (*Nearline)(nil)
	_ fs.Checksummer = (*Nearline)(nil)
)

// Adler32 implements fs.Checksummer. A stub's data is on tape only, so its
// checksum is never computed from the (empty) disk copy: only a stored
// value is returned.
func (n *Nearline) Adler32(ctx context.Context, p string, compute bool) (string, error) {
	if _, stub := stubSize(p); stub {
		compute = false
	}
	return n.Posix.Adler32(ctx, p, compute)
}
