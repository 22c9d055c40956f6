package drivertest

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// BenchPutGet measures Put and then Open+read of one file of size bytes
// through d, reporting MB/s per sub-benchmark, so drivers (and the native
// engine against cp, xrdcp, davix) can be compared with the same numbers.
func BenchPutGet(b *testing.B, d driver.Driver, size int64) {
	data := make([]byte, size)
	rand.New(rand.NewSource(7)).Read(data)
	ctx := context.Background()
	b.Run("Put", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			if err := d.Put(ctx, "bench/blob", bytes.NewReader(data), size); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			rc, err := d.Open(ctx, "bench/blob", driver.Range{})
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil || n != size {
				b.Fatalf("read %d of %d bytes: %v", n, size, err)
			}
		}
	})
}
