package fileop_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/fileop/driver"
	_ "github.com/dynamo-go/dynamo/fileop/driver/local"
)

// Only temporary uploads older than the daemon's start go: one written
// since may be another writer's copy in progress, and real files are
// never touched. Directories that do not exist are not an error.
func TestRemoveLeftoversKeepsRecentUploadsAndRealFiles(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "store", "a")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	plant := func(name string, mtime time.Time) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	plant(".dynamo-tmp.old", start.Add(-time.Hour))
	plant(".dynamo-tmp.new", start.Add(time.Second))
	plant("real.root", start.Add(-time.Hour))
	n := fileop.NewNative(fileop.NativeConfig{}, driver.Options{}, testLog(t))
	removed, err := n.RemoveLeftovers(context.Background(), []string{
		"file://" + root + "/store/a/f1.root", "file://" + root + "/store/a/f2.root", "file://" + root + "/store/none/f3.root",
	}, start)
	if err != nil || removed != 1 {
		t.Fatalf("removed %d, %v; want 1", removed, err)
	}
	for name, want := range map[string]bool{".dynamo-tmp.old": false, ".dynamo-tmp.new": true, "real.root": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", name, err == nil, want)
		}
	}
}
