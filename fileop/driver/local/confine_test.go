package local_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// plantEscapes makes a site whose storage holds links to a directory
// outside it: filelink -> outside/victim, dirlink -> outside/sub,
// big -> outside/big (large enough for the kernel copy path), and, where
// the filesystem allows it, hard, a hard link of outside/victim.
func plantEscapes(t *testing.T) (site, outside string, hard bool) {
	t.Helper()
	site, outside = t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(outside, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(outside, "victim"), []byte("secret"), 0o600))
	must(os.WriteFile(filepath.Join(outside, "sub", "victim"), []byte("secret"), 0o600))
	must(os.WriteFile(filepath.Join(outside, "big"), bytes.Repeat([]byte("s"), 5<<20), 0o600))
	must(os.Symlink(filepath.Join(outside, "victim"), filepath.Join(site, "filelink")))
	must(os.Symlink(filepath.Join(outside, "sub"), filepath.Join(site, "dirlink")))
	must(os.Symlink(filepath.Join(outside, "big"), filepath.Join(site, "big")))
	must(os.WriteFile(filepath.Join(site, "real"), bytes.Repeat([]byte("r"), 5<<20), 0o644))
	hard = os.Link(filepath.Join(outside, "victim"), filepath.Join(site, "hard")) == nil
	return site, outside, hard
}

// outsideIntact fails unless the outside tree is exactly what plantEscapes
// made: nothing read through a link was changed, nothing written or
// removed there.
func outsideIntact(t *testing.T, outside string) {
	t.Helper()
	var got []string
	err := filepath.Walk(outside, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(outside, p)
		if !fi.IsDir() {
			b, _ := os.ReadFile(p)
			if rel != "big" && string(b) != "secret" {
				t.Errorf("outside/%s was changed to %q", rel, b)
			}
		}
		got = append(got, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := ". big sub sub/victim victim"; strings.Join(got, " ") != want {
		t.Errorf("outside holds %v, want %s", got, want)
	}
}

// TestLinksInTheSiteDoNotEscape: a symbolic link (to a file or to a
// directory) or a hard link planted in a site's storage never makes the
// driver read, checksum, write, rename or delete outside the site. The
// refusals are ErrInvalidPath, which is not retried.
func TestLinksInTheSiteDoNotEscape(t *testing.T) {
	ctx := context.Background()
	site, outside, hard := plantEscapes(t)
	d, err := driver.Open(ctx, "file://"+site, driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, driver.ErrInvalidPath) && !errors.Is(err, driver.ErrNotDir) {
			t.Errorf("%s: %v; want it refused (invalid path)", what, err)
		}
		if err != nil && strings.Contains(err.Error(), outside) {
			t.Errorf("%s: error reveals the link's target: %v", what, err)
		}
	}
	names := []string{"filelink", "dirlink/victim", "big"}
	if hard {
		names = append(names, "hard")
	}
	for _, n := range names {
		_, err := d.Stat(ctx, n)
		if n != "hard" { // a hard link is a plain file to stat; its bytes are what is refused
			refused("stat "+n, err)
		}
		rc, err := d.Open(ctx, n, driver.Range{})
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			t.Errorf("open %s read %d bytes from outside the site", n, len(b))
		}
		refused("open "+n, err)
		_, err = d.(driver.Checksummer).Checksum(ctx, n, driver.AlgoAdler32)
		refused("checksum "+n, err)
	}
	// Transfers out of the site through a link, on the streamed and the
	// kernel copy paths.
	dst, err := driver.Open(ctx, "file://"+t.TempDir(), driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = driver.Copy(ctx, dst, "x", d, "filelink", -1, "")
	refused("copy from filelink", err)
	_, err = driver.Copy(ctx, dst, "y", d, "big", 5<<20, "")
	refused("kernel copy from big", err)
	// Transfers into the site through a directory link.
	err = d.Put(ctx, "dirlink/new", strings.NewReader("planted"), -1)
	refused("put dirlink/new", err)
	_, err = driver.Copy(ctx, d, "dirlink/copied", d, "real", 5<<20, "")
	refused("kernel copy to dirlink/copied", err)
	refused("mkdir dirlink/x", d.Mkdir(ctx, "dirlink/x"))
	// Deletions and renames through a directory link.
	refused("remove dirlink/victim", d.Remove(ctx, "dirlink/victim"))
	refused("rmdir dirlink", d.Rmdir(ctx, "dirlink"))
	refused("rename from dirlink", d.(driver.Renamer).Rename(ctx, "dirlink/victim", "stolen"))
	refused("rename into dirlink", d.(driver.Renamer).Rename(ctx, "real", "dirlink/real"))
	refused("list dirlink", d.List(ctx, "dirlink", func(driver.Entry) error { return nil }))
	outsideIntact(t, outside)

	// A listing shows the links as they are, never as what they point at,
	// so a walk does not descend into outside/sub and a size check never
	// passes on a link.
	seen := map[string]driver.Entry{}
	if err := d.List(ctx, "", func(e driver.Entry) error { seen[e.Name] = e; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"filelink", "dirlink", "big"} {
		if e := seen[n]; e.IsDir || e.Size != 0 {
			t.Errorf("listed %s as %+v; want a non-directory of size 0", n, e)
		}
	}
	// Replacing or removing a link acts on the link, inside the site.
	if err := d.Put(ctx, "filelink", strings.NewReader("mine"), 4); err != nil {
		t.Fatalf("put over a link: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(site, "filelink")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("filelink after put: %v %v; want a regular file", fi, err)
	}
	if err := d.Remove(ctx, "big"); err != nil {
		t.Fatalf("remove a link: %v", err)
	}
	outsideIntact(t, outside)
}

// TestTemporaryIsTheSEs: the driver's temporaries and the storage
// element's are one kind, so an interrupted write by either, in a
// directory that is both a site and an SE area, is listed as a temporary
// (reported and cleaned), never as an orphan replica.
func TestTemporaryIsTheSEs(t *testing.T) {
	ctx := context.Background()
	site := t.TempDir()
	r, err := rootfs.Open(site)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := r.Create("interrupted", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	d, err := driver.Open(ctx, "file://"+site, driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := d.List(ctx, "", func(e driver.Entry) error { names = append(names, e.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || !driver.IsTemporary(names[0]) {
		t.Fatalf("listed %v; want the SE's interrupted write, recognized as a temporary", names)
	}
}
