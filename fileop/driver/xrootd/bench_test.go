package xrootd_test

import (
	"context"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/fileop/driver/drivertest"
	"github.com/dynamo-go/dynamo/internal/testservers"
)

// BenchmarkXRootD: 128 MiB through xrdcp stdin/stdout against xrootd on
// loopback (Put includes the temp-name mv).
func BenchmarkXRootD(b *testing.B) {
	testservers.Need(b, "xrdcp")
	s := testservers.XRootD(b, testservers.XRootDOptions{})
	d, err := driver.Open(context.Background(), s.URL, driver.Options{})
	if err != nil {
		b.Fatal(err)
	}
	drivertest.BenchPutGet(b, d, 128<<20)
}
