package webdav_test

import (
	"context"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/fileop/driver/drivertest"
	"github.com/dynamo-go/dynamo/internal/testservers"
)

// BenchmarkApache: 128 MiB PUT and GET against Apache mod_dav on loopback,
// over http and over https (client certificate).
func BenchmarkApache(b *testing.B) {
	s := testservers.Apache(b, testservers.ApacheOptions{TLS: true})
	for _, tc := range []struct{ name, url string }{{"http", s.URL}, {"https", s.TLSURL}} {
		b.Run(tc.name, func(b *testing.B) {
			d, err := driver.Open(context.Background(), tc.url, driver.Options{CACertDir: s.PKI.CertDir})
			if err != nil {
				b.Fatal(err)
			}
			drivertest.BenchPutGet(b, d, 128<<20)
		})
	}
}
