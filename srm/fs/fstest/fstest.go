// Package fstest is the conformance suite of srm/fs drivers: every driver
// runs it on a temporary directory (drivers for remote systems run it when
// their test endpoint is configured).
package fstest

import (
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dynamo-go/dynamo/srm/fs"
)

// Run checks the fs.Driver contract on a driver rooted at root (an empty
// directory), plus the optional capabilities the driver has, then the
// confinement contract (RunConfinement).
func Run(t *testing.T, d fs.Driver, root string) {
	ctx := context.Background()
	p := func(s string) string { return s }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, data string) {
		t.Helper()
		w, err := d.Create(ctx, p(name))
		must(err)
		_, err = io.WriteString(w, data)
		must(err)
		must(w.Commit(int64(len(data)), true))
	}

	must(d.Mkdir(ctx, p("dir")))
	if err := d.Mkdir(ctx, p("dir")); !errors.Is(err, iofs.ErrExist) {
		t.Errorf("Mkdir existing: %v, want ErrExist", err)
	}
	if err := d.Mkdir(ctx, p("no/parent")); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Mkdir without parent: %v, want ErrNotExist", err)
	}
	write("dir/b", "bravo")
	write("dir/a", "alpha!")
	fi, err := d.Stat(ctx, p("dir/a"))
	must(err)
	if fi.Size != 6 || fi.IsDir() || fi.Name != "a" || fi.ModTime.IsZero() {
		t.Errorf("Stat file = %+v", fi)
	}
	if fi, err := d.Stat(ctx, p("dir")); err != nil || !fi.IsDir() {
		t.Errorf("Stat dir = %+v %v", fi, err)
	}
	if _, err := d.Stat(ctx, p("nope")); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Stat missing: %v", err)
	}
	l, err := d.List(ctx, p("dir"))
	must(err)
	if len(l) != 2 || l[0].Name != "a" || l[1].Name != "b" {
		t.Errorf("List = %+v, want a, b sorted", l)
	}
	f, err := d.Open(ctx, p("dir/a"))
	must(err)
	buf := make([]byte, 3)
	if _, err := f.ReadAt(buf, 2); err != nil || string(buf) != "pha" {
		t.Errorf("ReadAt = %q %v", buf, err)
	}
	must(f.Close())
	if _, err := d.Open(ctx, p("dir")); err == nil {
		t.Error("Open of a directory succeeded")
	}
	if err := d.Remove(ctx, p("dir")); !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		t.Errorf("Remove non-empty dir: %v, want ENOTEMPTY", err)
	}
	must(d.Rename(ctx, p("dir/a"), p("dir/c")))
	if err := d.Rename(ctx, p("dir/b"), p("dir/c")); !errors.Is(err, iofs.ErrExist) {
		t.Errorf("Rename onto existing: %v, want ErrExist", err)
	}
	must(d.Chmod(ctx, p("dir/c"), 0o640))
	if fi, _ := d.Stat(ctx, p("dir/c")); fi.Mode.Perm() != 0o640 {
		t.Errorf("Chmod: mode %v", fi.Mode)
	}
	if ck, ok := d.(fs.Checksummer); ok {
		if sum, err := ck.Adler32(ctx, p("dir/c"), true); err != nil || sum != "08430228" {
			t.Errorf("Adler32(alpha!) = %q %v, want 08430228", sum, err)
		}
		if sum, _ := ck.Adler32(ctx, p("dir/c"), false); sum != "08430228" {
			t.Errorf("stored Adler32 = %q", sum)
		}
		write("dir/c", "changed") // a new write stores the new sum
		if sum, _ := ck.Adler32(ctx, p("dir/c"), false); sum != "0b2c02cb" {
			t.Errorf("Adler32 after rewrite = %q, want 0b2c02cb", sum)
		}
	}
	if sr, ok := d.(fs.SpaceReporter); ok {
		if n, err := sr.Used(ctx); err != nil || n != int64(len("changed")+len("bravo")) {
			t.Errorf("Used = %d %v", n, err)
		}
	}
	must(d.Remove(ctx, p("dir/b")))
	must(d.Remove(ctx, p("dir/c")))
	must(d.Remove(ctx, p("dir")))
	if _, err := os.Stat(filepath.Join(root, "dir")); !os.IsNotExist(err) {
		t.Errorf("dir still there: %v", err)
	}
	RunAtomicWrites(t, d, root)
	RunConfinement(t, d, root)
}
