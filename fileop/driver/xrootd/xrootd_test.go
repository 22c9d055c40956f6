package xrootd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/fileop/driver/drivertest"
	_ "github.com/dynamo-go/dynamo/fileop/driver/xrootd"
	"github.com/dynamo-go/dynamo/internal/testservers"
)

func TestConformanceXRootD(t *testing.T) {
	testservers.Need(t, "xrdfs")
	s := testservers.XRootD(t, testservers.XRootDOptions{})
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		d, err := driver.Open(context.Background(), s.URL, driver.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, drivertest.Caps{
		Checksum: true, Space: true, Rename: true, AtomicPut: true, ListEntries: 1000,
		Populate: func(t *testing.T, dir string, n int) {
			for i := 0; i < n; i++ {
				if err := os.WriteFile(filepath.Join(s.DataDir, dir, fmt.Sprintf("f%05d", i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
}
