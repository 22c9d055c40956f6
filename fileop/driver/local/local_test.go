package local_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/fileop/driver/drivertest"
	_ "github.com/dynamo-go/dynamo/fileop/driver/local"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		d, err := driver.Open(context.Background(), "file://"+t.TempDir(), driver.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, drivertest.Caps{Checksum: true, Space: true, Rename: true, AtomicPut: true, ListEntries: 1000})
}

// A temporary upload left by an interrupted transfer is listed, so that
// the consistency check sees it and the daemon can remove it; it is
// recognizable as such.
func TestListShowsTempFiles(t *testing.T) {
	root := t.TempDir()
	d, err := driver.Open(context.Background(), "file://"+root, driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".dynamo-tmp.123"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := d.List(context.Background(), "", func(e driver.Entry) error { names = append(names, e.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || !driver.IsTemporary(names[0]) {
		t.Fatalf("listed %v; want the temporary upload, recognizable as such", names)
	}
}

func TestOpenRejectsRelativeAndRemote(t *testing.T) {
	for _, u := range []string{"file://otherhost/data", "file:relative/dir"} {
		if _, err := driver.Open(context.Background(), u, driver.Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}
