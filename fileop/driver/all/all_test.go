package all_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
	_ "github.com/dynamo-go/dynamo/fileop/driver/all"
	"github.com/dynamo-go/dynamo/fileop/driver/drivertest"
)

func TestAllSchemesRegistered(t *testing.T) {
	got := strings.Join(driver.Schemes(), ",")
	if got != "dav,davs,file,http,https,root,srm,xroot" {
		t.Fatalf("registered schemes = %s", got)
	}
}

// TestConformanceExternal runs the suite against a real storage endpoint
// outside the test, e.g. a site's SE, when DYNAMO_TEST_SE_URL names a
// writable directory URL. Credentials come from the X509_* variables;
// DYNAMO_TEST_SE_CAPS lists capabilities: checksum,space,rename,atomic.
// Each run works in a fresh subdirectory and removes it afterwards.
func TestConformanceExternal(t *testing.T) {
	base := os.Getenv("DYNAMO_TEST_SE_URL")
	if base == "" {
		t.Skip("DYNAMO_TEST_SE_URL not set")
	}
	var caps drivertest.Caps
	for _, c := range strings.Split(os.Getenv("DYNAMO_TEST_SE_CAPS"), ",") {
		switch strings.TrimSpace(c) {
		case "checksum":
			caps.Checksum = true
		case "space":
			caps.Space = true
		case "rename":
			caps.Rename = true
		case "atomic":
			caps.AtomicPut = true
		case "":
		default:
			t.Fatalf("DYNAMO_TEST_SE_CAPS: unknown capability %q", c)
		}
	}
	caps.ListEntries = 200
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		var b [6]byte
		_, _ = rand.Read(b[:])
		ctx := context.Background()
		url := strings.TrimSuffix(base, "/") + "/dynamo-drivertest-" + hex.EncodeToString(b[:])
		d, err := driver.Open(ctx, url, driver.OptionsFromEnv())
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Mkdir(ctx, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			parent, err := driver.Open(ctx, base, driver.OptionsFromEnv())
			if err == nil {
				err = driver.RemoveAll(ctx, parent, url[len(strings.TrimSuffix(base, "/"))+1:])
			}
			if err != nil {
				t.Errorf("cleanup of %s: %v", url, err)
			}
		})
		return d
	}, caps)
}
