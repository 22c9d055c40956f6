package srm_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/fileop/driver/drivertest"
	_ "github.com/dynamo-go/dynamo/fileop/driver/srm"
	"github.com/dynamo-go/dynamo/internal/setest"
)

func TestConformanceEmbeddedSE(t *testing.T) {
	se := setest.Start(t, setest.Options{NoTape: true})
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		d, err := driver.Open(context.Background(), se.Base+"/", driver.Options{
			Proxy: filepath.Join(se.PKI, "proxy.pem"), CACertDir: filepath.Join(se.PKI, "certificates")})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, drivertest.Caps{
		Checksum: true, AtomicPut: true, ListEntries: 1200,
		Populate: func(t *testing.T, dir string, n int) {
			for i := 0; i < n; i++ {
				if err := os.WriteFile(filepath.Join(se.Root, dir, "f"+pad(i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
}

func pad(i int) string {
	s := "0000" + itoa(i)
	return s[len(s)-5:]
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestOpenNeedsCredentialAndPort(t *testing.T) {
	for _, u := range []string{"srm://localhost/x", "srm://localhost:8443/x?SFN=/y"} {
		if _, err := driver.Open(context.Background(), u, driver.Options{}); err == nil {
			t.Errorf("%s opened", u)
		}
	}
	_, err := driver.Open(context.Background(), "srm://localhost:8443/x", driver.Options{})
	if err == nil || !strings.Contains(err.Error(), "credential") {
		t.Errorf("no credential: %v", err)
	}
}
