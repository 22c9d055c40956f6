package srm

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The published report replaces the name as a directory entry: a link
// planted under the report's name is replaced, and what it points at is
// never written through.
func TestPublishFileReplacesLinksAndFiles(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	must(t, os.WriteFile(victim, []byte("keep"), 0o600))
	file := filepath.Join(dir, "srr.json")
	must(t, os.Symlink(victim, file))
	old := syscall.Umask(0o077)
	err := publishFile(file, []byte("{}\n"), 0o644)
	syscall.Umask(old)
	must(t, err)
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("the link's target was written through: %q", b)
	}
	st, err := os.Lstat(file)
	must(t, err)
	if !st.Mode().IsRegular() || st.Mode().Perm() != 0o644 {
		t.Fatalf("report is %v, want a regular file with mode 0644 whatever the umask", st.Mode())
	}
	must(t, publishFile(file, []byte("{\"v\":2}\n"), 0o644))
	if b, _ := os.ReadFile(file); string(b) != "{\"v\":2}\n" {
		t.Fatalf("second report not published: %q", b)
	}
	assertOnly(t, dir, "srr.json")
}

// A failed write leaves nothing behind, and its error names no temporary
// and no other physical path: WriteReport adds the operator's own name.
func TestPublishFileErrorsNameNoPath(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "srr.json")
	must(t, os.Mkdir(target, 0o755))
	missing := filepath.Join(dir, "missing", "srr.json")
	for _, file := range []string{target, missing, dir + "/"} {
		err := publishFile(file, []byte("{}\n"), 0o644)
		if err == nil {
			t.Fatalf("publishing over %s succeeded", file)
		}
		if msg := err.Error(); strings.Contains(msg, dir) || strings.Contains(msg, ".tmp") {
			t.Errorf("error for %s reveals a path: %q", file, msg)
		}
	}
	assertOnly(t, dir, "srr.json")
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v (a temporary left behind?)", dir, got, names)
	}
}
