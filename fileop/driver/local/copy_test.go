package local_test

import (
	"bytes"
	"context"
	"errors"
	"hash/adler32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

func TestCopyLocalKernelPathChecksAndIsAtomic(t *testing.T) {
	ctx := context.Background()
	srcDir, dstDir := t.TempDir(), t.TempDir()
	data := make([]byte, 3<<20+12345)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(filepath.Join(srcDir, "f.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := driver.Open(ctx, "file://"+srcDir, driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := driver.Open(ctx, "file://"+dstDir, driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := dst.(driver.LocalCopier); !ok {
		t.Fatal("file:// driver does not offer the kernel copy")
	}
	want := driver.FormatAdler32(adler32.Checksum(data))
	res, err := driver.Copy(ctx, dst, "a/b/f.bin", src, "f.bin", int64(len(data)), want)
	if err != nil {
		t.Fatal(err)
	}
	if res.Adler32 != want || res.Bytes != int64(len(data)) {
		t.Fatalf("result %+v, want %s and %d bytes", res, want, len(data))
	}
	got, err := os.ReadFile(filepath.Join(dstDir, "a/b/f.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("destination differs from the source (%v)", err)
	}
	// The checksum was computed from the bytes, not trusted: a wrong
	// expectation is a mismatch and leaves no destination behind.
	_, err = driver.Copy(ctx, dst, "bad.bin", src, "f.bin", int64(len(data)), "00000001")
	if !errors.Is(err, driver.ErrChecksumMismatch) {
		t.Fatalf("wrong checksum: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dstDir, "bad.bin")); !os.IsNotExist(err) {
		t.Errorf("bad copy left in place: %v", err)
	}
	// A size that does not match what is there is refused before the rename.
	_, err = driver.Copy(ctx, dst, "short.bin", src, "f.bin", int64(len(data))+1, "")
	if !errors.Is(err, driver.ErrSizeMismatch) {
		t.Fatalf("wrong size: %v", err)
	}
	if ents, _ := os.ReadDir(dstDir); len(ents) != 1 {
		t.Errorf("leftovers in the destination: %v", ents)
	}
	// A cancelled copy writes nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := driver.Copy(cctx, dst, "c.bin", src, "f.bin", int64(len(data)), ""); err == nil {
		t.Error("cancelled copy succeeded")
	}
	if _, err := os.Stat(filepath.Join(dstDir, "c.bin")); !os.IsNotExist(err) {
		t.Errorf("cancelled copy left a file: %v", err)
	}
}
