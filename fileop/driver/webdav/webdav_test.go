package webdav_test

import (
	"context"
	"errors"
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

// TestMkdirRoot: a driver opened below a missing collection can create its
// own root (Mkdir("")), but never anything above it.
func TestMkdirRoot(t *testing.T) {
	s := testservers.Apache(t, testservers.ApacheOptions{})
	ctx := context.Background()
	d, err := driver.Open(ctx, s.URL+"newroot", driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Mkdir(ctx, ""); err != nil {
		t.Fatalf("mkdir of the root: %v", err)
	}
	if st, err := os.Stat(filepath.Join(s.DataDir, "newroot")); err != nil || !st.IsDir() {
		t.Fatalf("root not created: %v", err)
	}
	d, err = driver.Open(ctx, s.URL+"missing/deeper", driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Mkdir(ctx, ""); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("mkdir of a root whose parent is missing: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, "missing")); !os.IsNotExist(err) {
		t.Fatalf("driver created a directory above its root: %v", err)
	}
}
