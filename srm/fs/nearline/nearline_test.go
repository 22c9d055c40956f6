package nearline

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/fstest"
)

func TestConformance(t *testing.T) {
	root := t.TempDir()
	d, err := New(root, filepath.Join(t.TempDir(), "tape"), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	fstest.Run(t, d, root)
}

func TestTapeCycle(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := New(root, filepath.Join(t.TempDir(), "tape"), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	p := "f"
	if err := os.WriteFile(filepath.Join(root, p), []byte("tape data"), 0o644); err != nil {
		t.Fatal(err)
	}
	loc := func() fs.Locality {
		fi, err := d.Stat(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Locality
	}
	if loc() != fs.Online {
		t.Fatalf("new file: %v", loc())
	}
	if err := d.Purge(ctx, p); !errors.Is(err, fs.ErrLastCopy) {
		t.Fatalf("purge before migration: %v, want ErrLastCopy", err)
	}
	if err := d.Migrate(ctx, p); err != nil {
		t.Fatal(err)
	}
	if loc() != fs.OnlineAndNearline {
		t.Fatalf("after migration: %v", loc())
	}
	sum, _ := d.Adler32(ctx, p, true)
	if err := d.Purge(ctx, p); err != nil {
		t.Fatal(err)
	}
	fi, _ := d.Stat(ctx, p)
	if fi.Locality != fs.Nearline || fi.Size != 9 {
		t.Fatalf("after purge: %+v", fi)
	}
	if s2, _ := d.Adler32(ctx, p, false); s2 != sum {
		t.Errorf("checksum lost by purge: %q vs %q", s2, sum)
	}
	if _, err := d.Open(ctx, p); !errors.Is(err, fs.ErrNotOnline) {
		t.Errorf("Open of a purged file: %v", err)
	}
	done1, e1 := d.Recall(ctx, p)
	done2, _ := d.Recall(ctx, p) // joins the same recall
	if done1 != done2 {
		t.Error("concurrent recalls were not merged")
	}
	select {
	case <-done1:
	case <-time.After(5 * time.Second):
		t.Fatal("recall did not finish")
	}
	if *e1 != nil {
		t.Fatal(*e1)
	}
	if loc() != fs.OnlineAndNearline {
		t.Errorf("after recall: %v", loc())
	}
	f, err := d.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "tape data" {
		t.Errorf("recalled content %q", b)
	}
}

func TestStubChecksumNeverComputedFromStub(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := New(root, filepath.Join(t.TempDir(), "tape"), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	p := "f"
	if err := os.WriteFile(filepath.Join(root, p), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := d.Purge(ctx, p); err != nil { // no checksum stored before
		t.Fatal(err)
	}
	if sum, err := d.Adler32(ctx, p, true); err != nil || sum != "" {
		t.Errorf("Adler32 of a stub = %q %v, want none (the data is on tape)", sum, err)
	}
}

// TestTapeDirApartFromRoot: the tape copies never live where the SE's
// clients can reach them, whatever links the paths go through, and a
// missing tape directory is made below its existing ancestor.
func TestTapeDirApartFromRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "disk")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(base, "alias")); err != nil {
		t.Fatal(err)
	}
	for _, tape := range []string{root, filepath.Join(root, "tape"), filepath.Join(base, "alias", "deep", "tape"), base} {
		if d, err := New(root, tape, time.Millisecond); !errors.Is(err, ErrOverlap) {
			if d != nil {
				d.Close()
			}
			t.Errorf("tape dir %s: %v; want ErrOverlap", tape, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "tape")); !os.IsNotExist(err) {
		t.Errorf("a refused tape directory was made: %v", err)
	}
	tape := filepath.Join(base, "tapes", "a", "b")
	d, err := New(root, tape, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if st, err := os.Lstat(tape); err != nil || !st.IsDir() {
		t.Fatalf("tape directory not made: %v", err)
	}
}
