package webdav_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/fileop/driver/drivertest"
	_ "github.com/dynamo-go/dynamo/fileop/driver/webdav"
	"github.com/dynamo-go/dynamo/internal/testservers"
)

// apacheCaps: mod_dav sends no Digest header, no quota properties, and
// writes PUT bodies to a temp file renamed on success (atomic).
func apacheCaps(s *testservers.ApacheServer) drivertest.Caps {
	return drivertest.Caps{
		Rename: true, AtomicPut: true, ListEntries: 1000,
		Populate: func(t *testing.T, dir string, n int) {
			for i := 0; i < n; i++ {
				if err := os.WriteFile(filepath.Join(s.DataDir, dir, fmt.Sprintf("f%05d", i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		},
	}
}

func TestConformanceApacheHTTP(t *testing.T) {
	s := testservers.Apache(t, testservers.ApacheOptions{})
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		d, err := driver.Open(context.Background(), "dav"+s.URL[len("http"):], driver.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, apacheCaps(s))
}

// TestConformanceApacheTLS runs the suite over davs:// with the CA from an
// X509_CERT_DIR-style directory and a proxy-layout credential file (cert +
// key in one PEM), against an Apache that requires a client certificate.
func TestConformanceApacheTLS(t *testing.T) {
	s := testservers.Apache(t, testservers.ApacheOptions{TLS: true, ClientCert: true})
	opts := driver.Options{CACertDir: s.PKI.CertDir, Proxy: s.PKI.UserCred}
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		d, err := driver.Open(context.Background(), "davs"+s.TLSURL[len("https"):], opts)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, apacheCaps(s))
}
