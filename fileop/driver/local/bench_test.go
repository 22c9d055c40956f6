package local_test

import (
	"context"
	"hash/adler32"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// benchSize is the file copied by the copy benchmarks: 256 MiB, or
// DYNAMO_BENCH_COPY_MB.
func benchSize() int64 {
	if v, err := strconv.Atoi(os.Getenv("DYNAMO_BENCH_COPY_MB")); err == nil && v > 0 {
		return int64(v) << 20
	}
	return 256 << 20
}

// benchSource writes a random file of benchSize bytes (once per benchmark)
// and returns its directory and adler32.
func benchSource(b *testing.B) (string, string) {
	b.Helper()
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "src.bin"))
	if err != nil {
		b.Fatal(err)
	}
	h := adler32.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.New(rand.NewSource(1)), benchSize()); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return dir, driver.FormatAdler32(h.Sum32())
}

// BenchmarkCopyDriverAdler32 is the native transfer engine's data path:
// driver.Copy from file:// to file:// with adler32 computed on the fly and
// verified, temp file + fsync + rename on the destination.
func BenchmarkCopyDriverAdler32(b *testing.B) {
	dir, sum := benchSource(b)
	d, err := driver.Open(context.Background(), "file://"+dir, driver.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := driver.Copy(context.Background(), d, "dst.bin", d, "src.bin", benchSize(), sum)
		if err != nil || res.Adler32 != sum {
			b.Fatalf("copy: %+v %v", res, err)
		}
	}
}

// BenchmarkCopyPlain is the baseline: io.Copy between two os.Files with an
// fsync, no checksum. Go uses copy_file_range here, so no byte crosses
// user space: the floor no streaming engine can reach.
func BenchmarkCopyPlain(b *testing.B) { benchPlain(b, false) }

// BenchmarkCopyUserspace streams through a 1 MiB user-space buffer with an
// fsync, no checksum: what driver.Copy costs minus adler32 and the driver.
func BenchmarkCopyUserspace(b *testing.B) { benchPlain(b, true) }

func benchPlain(b *testing.B, userspace bool) {
	dir, _ := benchSource(b)
	b.SetBytes(benchSize())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src, err := os.Open(filepath.Join(dir, "src.bin"))
		if err != nil {
			b.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(dir, "dst.bin"))
		if err != nil {
			b.Fatal(err)
		}
		var w io.Writer = dst
		var r io.Reader = src
		if userspace {
			w, r = struct{ io.Writer }{dst}, struct{ io.Reader }{src}
		}
		if _, err := io.CopyBuffer(w, r, make([]byte, 1<<20)); err != nil {
			b.Fatal(err)
		}
		if err := dst.Sync(); err != nil {
			b.Fatal(err)
		}
		src.Close()
		dst.Close()
	}
}

// BenchmarkCopyCp runs coreutils cp plus sync of the file, the reference
// the lead compares the native engine with.
func BenchmarkCopyCp(b *testing.B) {
	cp, err := exec.LookPath("cp")
	if err != nil {
		b.Skip("no cp")
	}
	dir, _ := benchSource(b)
	b.SetBytes(benchSize())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(dir, "dst.bin")
		if out, err := exec.Command(cp, filepath.Join(dir, "src.bin"), dst).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
		if out, err := exec.Command("sync", dst).CombinedOutput(); err != nil {
			b.Fatalf("sync: %v %s", err, out)
		}
	}
}
