package fstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/srm/fs"
)

// Sentinel makes a directory tree outside any storage area, for escape
// tests: files, a subdirectory, restrictive modes. Snapshot it before an
// attack and compare after.
func Sentinel(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "outside")
	for _, d := range []string{"", "sub", "sub/deeper"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{"secret": "outside secret", "sub/victim": "do not delete", "sub/deeper/x": "xx"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Snapshot describes a tree on disk for comparison: for each entry its
// type, mode, size, mtime, link target and content digest (so a read that
// changed atime is not a difference, but any write, chmod, create or delete
// is).
func Snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, st os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		d := fmt.Sprintf("%v %d %d", st.Mode(), st.Size(), st.ModTime().UnixNano())
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			d += " -> " + target
		case st.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			d += " " + hex.EncodeToString(h[:8])
		}
		out[rel] = d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SameSnapshot fails the test when two snapshots differ, naming the
// differences.
func SameSnapshot(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	var diffs []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			diffs = append(diffs, "removed "+k)
		} else if v != w {
			diffs = append(diffs, "changed "+k+": "+v+" => "+w)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diffs = append(diffs, "created "+k)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("%s: the tree outside the root changed:\n  %s", what, strings.Join(diffs, "\n  "))
	}
}

// Traps plants escape routes inside root pointing at outside: symbolic
// links to a directory, a file, "..", a chain of links, an absolute link
// to "/", and a hard link to an outside file (when both are on one
// filesystem; reported by the bool).
func Traps(t testing.TB, root, outside string) (hardLink bool) {
	t.Helper()
	links := map[string]string{
		"linkdir":   outside,
		"linkfile":  filepath.Join(outside, "secret"),
		"dotdot":    "..",
		"chain1":    "chain2",
		"chain2":    outside,
		"slash":     "/",
		"reldir":    "../" + filepath.Base(filepath.Dir(outside)) + "/outside",
		"d/up":      "../..",
		"d/innerok": "../d", // stays inside, still never followed
	}
	if err := os.MkdirAll(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return os.Link(filepath.Join(outside, "sub", "victim"), filepath.Join(root, "hardlink")) == nil
}

// LinkNames are the names Traps plants (without the hard link).
var LinkNames = []string{"linkdir", "linkfile", "dotdot", "chain1", "chain2", "slash", "reldir", "d/up", "d/innerok"}

// RunConfinement attacks the driver with every operation through the
// traps and checks nothing outside the root was read, listed, created,
// changed or deleted.
func RunConfinement(t *testing.T, d fs.Driver, root string) {
	ctx := context.Background()
	outside := Sentinel(t)
	hard := Traps(t, root, outside)
	before := Snapshot(t, outside)
	secret := "outside secret"

	// Names that must never reach anything outside.
	names := []string{"../outside", "/etc/passwd", "d/../../x", "..", "./linkdir", "linkdir//secret", "a\x00b"}
	for _, l := range LinkNames {
		names = append(names, l, l+"/secret", l+"/sub", l+"/sub/victim", l+"/new", l+"/outside/secret")
	}
	readAll := func(f fs.ReadFile) string {
		b, _ := io.ReadAll(f)
		f.Close()
		return string(b)
	}
	for _, n := range names {
		if fi, err := d.Stat(ctx, n); err == nil && !fi.IsLink() {
			t.Errorf("Stat(%q) followed a link or escaped: %+v", n, fi)
		}
		if l, err := d.List(ctx, n); err == nil {
			t.Errorf("List(%q) listed through a link: %+v", n, l)
		}
		if f, err := d.Open(ctx, n); err == nil {
			if got := readAll(f); strings.Contains(got, secret) || got != "" {
				t.Errorf("Open(%q) read %q", n, got)
			}
		}
		if err := d.Mkdir(ctx, n+"/mk"); err == nil {
			t.Errorf("Mkdir(%q/mk) succeeded", n)
		}
		if err := d.Chmod(ctx, n, 0o777); err == nil {
			t.Errorf("Chmod(%q) succeeded", n)
		}
		if ck, ok := d.(fs.Checksummer); ok {
			if sum, err := ck.Adler32(ctx, n, true); err == nil && sum != "" {
				t.Errorf("Adler32(%q) = %s", n, sum)
			}
		}
		if w, err := d.Create(ctx, n+"/created"); err == nil {
			io.WriteString(w, "x")
			if err := w.Commit(-1, true); err == nil {
				t.Errorf("Create(%q/created) committed", n)
			}
		}
		if err := d.Remove(ctx, n+"/secret"); err == nil {
			t.Errorf("Remove(%q/secret) succeeded", n)
		}
		if err := d.Rename(ctx, n+"/secret", "stolen"); err == nil {
			t.Errorf("Rename(%q/secret) succeeded", n)
		}
		if err := d.Rename(ctx, "d", n+"/moved"); err == nil {
			t.Errorf("Rename(d -> %q/moved) succeeded", n)
		}
		if st, ok := d.(fs.Stager); ok {
			_ = st.Migrate(ctx, n)
			_ = st.Purge(ctx, n)
		}
	}
	// Links are listed as links, without target metadata.
	l, err := d.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, fi := range l {
		for _, n := range LinkNames {
			if fi.Name == n && (!fi.IsLink() || fi.Size != 0 || fi.IsDir()) {
				t.Errorf("List shows link %s as %+v", n, fi)
			}
		}
	}
	if hard {
		if f, err := d.Open(ctx, "hardlink"); err == nil {
			t.Errorf("Open(hardlink) served a file with an outside link: %q", readAll(f))
		}
		if err := d.Chmod(ctx, "hardlink", 0o777); err == nil {
			t.Error("Chmod(hardlink) changed a file with an outside link")
		}
		// A write replaces the name, never writes through.
		w, err := d.Create(ctx, "hardlink")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "replaced")
		if err := w.Commit(-1, true); err != nil {
			t.Fatalf("replacing a hard-linked name: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "hardlink")); string(b) != "replaced" {
			t.Errorf("hardlink content %q", b)
		}
	}
	// A write over a link replaces the link.
	w, err := d.Create(ctx, "linkfile")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "mine")
	if err := w.Commit(-1, true); err != nil {
		t.Fatalf("replacing a link: %v", err)
	}
	if st, err := os.Lstat(filepath.Join(root, "linkfile")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("linkfile after replace: %v %v", st, err)
	}
	// Removing a link removes the link, not its target.
	for _, n := range []string{"linkdir", "dotdot", "slash", "d/up"} {
		if err := d.Remove(ctx, n); err != nil {
			t.Errorf("Remove(link %s): %v", n, err)
		}
	}
	SameSnapshot(t, "driver attacks", before, Snapshot(t, outside))
}

// RunAtomicWrites checks Create/Commit/Abort: nothing is visible before
// Commit, Abort and a size mismatch keep the previous content, temporaries
// are hidden and swept.
func RunAtomicWrites(t *testing.T, d fs.Driver, root string) {
	ctx := context.Background()
	put := func(name, data string) {
		t.Helper()
		w, err := d.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, data)
		if err := w.Commit(int64(len(data)), true); err != nil {
			t.Fatal(err)
		}
	}
	content := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	put("atomic", "original")
	w, err := d.Create(ctx, "atomic")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "new content")
	if got := content("atomic"); got != "original" {
		t.Errorf("content before Commit = %q", got)
	}
	if l, _ := d.List(ctx, ""); len(l) != 1 || l[0].Name != "atomic" {
		t.Errorf("temporaries visible in List: %+v", l)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := content("atomic"); got != "original" {
		t.Errorf("content after Abort = %q", got)
	}
	w, _ = d.Create(ctx, "atomic")
	io.WriteString(w, "short")
	if err := w.Commit(100, true); err == nil {
		t.Error("Commit with a wrong expected size succeeded")
	}
	if got := content("atomic"); got != "original" {
		t.Errorf("content after a failed Commit = %q", got)
	}
	w, _ = d.Create(ctx, "atomic")
	io.WriteString(w, "x")
	if err := w.Commit(-1, false); !errors.Is(err, iofs.ErrExist) {
		t.Errorf("Commit without replace over a file: %v, want ErrExist", err)
	}
	// An interrupted write leaves a temporary that Sweep removes.
	w, _ = d.Create(ctx, "crashed")
	io.WriteString(w, "partial")
	if sw, ok := d.(fs.Sweeper); ok {
		n, err := sw.Sweep(ctx, nil)
		if err != nil || n != 1 {
			t.Errorf("Sweep = %d %v, want 1 temporary removed", n, err)
		}
		ents, _ := os.ReadDir(root)
		if len(ents) != 1 {
			t.Errorf("after Sweep the root holds %d entries, want 1", len(ents))
		}
	}
	w.Abort()
	if err := d.Remove(ctx, "atomic"); err != nil {
		t.Fatal(err)
	}
}
