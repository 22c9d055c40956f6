package srm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// The capacity of an area without a size limit is measured on the tree
// the SE opened, not on whatever its configured path names later: an
// operator moving the directory does not make the report claim a full
// area (nor one of another filesystem).
func TestSRRMeasuresTheOpenedArea(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "area")
	must(t, os.Mkdir(root, 0o755))
	must(t, os.WriteFile(filepath.Join(root, "f"), []byte("12345"), 0o644))
	areas := []AreaConfig{{Name: "a", Prefix: "/a", Root: root, Driver: "posix", AccessLatency: "ONLINE", RetentionPolicy: "REPLICA"}}
	ns, err := NewNamespace(context.Background(), areas, newDriver)
	must(t, err)
	must(t, os.Rename(root, filepath.Join(base, "moved")))
	sh := buildSRR(&Config{SiteName: "T", Hostname: "h"}, ns, "1", "2", time.Now()).StorageService.StorageShares[0]
	if sh.UsedSize != 5 || sh.TotalSize <= sh.UsedSize {
		t.Fatalf("share used %d total %d; want 5 used and the free space of the area's filesystem on top", sh.UsedSize, sh.TotalSize)
	}
}
