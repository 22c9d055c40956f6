package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/internal/sumxattr"
	"github.com/dynamo-go/dynamo/srm/fs/posixfs"
)

// needXattrs skips where the test directory's filesystem has no user
// extended attributes (the drivers then recompute sums, nothing to share).
func needXattrs(t *testing.T, dir string) {
	p := filepath.Join(dir, ".xattr-probe")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	if err := unix.Setxattr(p, "user.probe", []byte("1"), 0); errors.Is(err, unix.ENOTSUP) {
		t.Skip("no user xattrs on the test filesystem")
	}
}

// TestSumIsSharedWithTheSE: a sum the file:// driver stores is the one
// the storage element's POSIX driver finds, without reading the file.
func TestSumIsSharedWithTheSE(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	needXattrs(t, root)
	d, err := driver.Open(ctx, "file://"+root, driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "f", strings.NewReader("shared sum"), -1); err != nil {
		t.Fatal(err)
	}
	want, err := d.(driver.Checksummer).Checksum(ctx, "f", driver.AlgoAdler32)
	if err != nil {
		t.Fatal(err)
	}
	se, err := posixfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	defer se.Close()
	got, _, err := se.StoredAdler32("f")
	if err != nil || got != want {
		t.Fatalf("SE found %q (%v), the file:// driver stored %q", got, err, want)
	}
}

// TestLegacySumIsRead: a file written before the drivers shared one
// attribute carries only the old one; its sum is still used (a wrong one
// planted there is returned, which proves the file was not read).
func TestLegacySumIsRead(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	needXattrs(t, root)
	p := filepath.Join(root, "old")
	if err := os.WriteFile(p, []byte("written long ago"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	v := "deadbeef " + strconv.FormatInt(fi.Size(), 10) + " " + strconv.FormatInt(fi.ModTime().UnixNano(), 10)
	if err := unix.Setxattr(p, sumxattr.LegacyName, []byte(v), 0); err != nil {
		t.Fatal(err)
	}
	d, err := driver.Open(ctx, "file://"+root, driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.(driver.Checksummer).Checksum(ctx, "old", driver.AlgoAdler32); err != nil || got != "deadbeef" {
		t.Fatalf("Checksum = %q, %v; want the legacy attribute's deadbeef", got, err)
	}
}
