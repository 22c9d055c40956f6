package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

func openT(t *testing.T) (*Root, string, string) {
	t.Helper()
	dir, outside := t.TempDir(), t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir, outside
}

// MkdirAll makes every missing element, accepts what exists, and never
// creates anything through a link.
func TestMkdirAllStaysBelowTheRoot(t *testing.T) {
	r, dir, outside := openT(t)
	if err := r.MkdirAll("a/b/c", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.MkdirAll("a/b/c", 0o755); err != nil {
		t.Fatalf("existing directory: %v", err)
	}
	if st, err := os.Stat(filepath.Join(dir, "a/b/c")); err != nil || !st.IsDir() {
		t.Fatalf("a/b/c not made: %v", err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "a", "link")); err != nil {
		t.Fatal(err)
	}
	if err := r.MkdirAll("a/link/x/y", 0o755); !errors.Is(err, ErrSymlink) {
		t.Fatalf("through a link: %v, want ErrSymlink", err)
	}
	if err := r.MkdirAll("a/link", 0o755); !errors.Is(err, ErrSymlink) {
		t.Fatalf("a link as the directory: %v, want ErrSymlink", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("made outside the root: %v", ents)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.MkdirAll("file/x", 0o755); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("through a file: %v, want ENOTDIR", err)
	}
}

// ScanDir shows what ReadDir hides (temporaries) and links as links, and
// stops on the callback's error, returned unchanged.
func TestScanDirShowsTemporariesAndLinks(t *testing.T) {
	r, dir, outside := openT(t)
	w, err := r.Create("f", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	var names []string
	links := 0
	if err := r.ScanDir("", func(in Info) error {
		names = append(names, in.Name)
		if in.IsLink() && !in.IsDir() {
			links++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	if len(names) != 2 || !strings.HasPrefix(names[0], TempPrefix) || names[1] != "link" || links != 1 {
		t.Fatalf("scanned %v (%d links); want the link and the temporary", names, links)
	}
	stop := errors.New("stop")
	if err := r.ScanDir("", func(Info) error { return stop }); err != stop {
		t.Fatalf("callback error came back as %v", err)
	}
	if err := r.ScanDir("link", func(Info) error { return nil }); !errors.Is(err, ErrSymlink) {
		t.Fatalf("scan through a link: %v, want ErrSymlink", err)
	}
}

// An unsummed write takes its bytes from a file through ReadFrom, counts
// them, and publishes them like any write.
func TestCreateUnsummedReadFrom(t *testing.T) {
	r, dir, outside := openT(t)
	src := filepath.Join(outside, "src")
	if err := os.WriteFile(src, []byte("kernel copied"), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	w, err := r.CreateUnsummed("dst", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	n, err := w.ReadFrom(in)
	if err != nil || n != 13 || w.Written() != 13 || w.Adler32() != "" {
		t.Fatalf("ReadFrom: %d %v, written %d, sum %q", n, err, w.Written(), w.Adler32())
	}
	if err := w.Commit(13, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "dst")); string(b) != "kernel copied" {
		t.Fatalf("published %q", b)
	}
}
