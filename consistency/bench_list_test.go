package consistency_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/internal/testservers"
)

// populate writes dirs×files empty files below data/store.
func populate(b *testing.B, data string, dirs, files int) {
	for d := 0; d < dirs; d++ {
		dir := filepath.Join(data, "store", fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < files; f++ {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.root", f)), nil, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkList measures listing throughput (files/s) through each driver
// against a real local server: 20 directories of 1000 files, 4 concurrent
// requests, spooled to sorted runs.
//
//	go test ./consistency -run '^$' -bench List -benchtime 3x
func BenchmarkList(b *testing.B) {
	const dirs, files = 20, 1000
	for _, srv := range []string{"file", "webdav-apache", "xrootd"} {
		b.Run(srv, func(b *testing.B) {
			var url, data string
			switch srv {
			case "file":
				data = b.TempDir()
				url = "file://" + data
			case "webdav-apache":
				s := testservers.Apache(b, testservers.ApacheOptions{})
				data, url = s.DataDir, "dav"+strings.TrimSuffix(s.URL[len("http"):], "/")
			case "xrootd":
				testservers.Need(b, "xrdfs")
				s := testservers.XRootD(b, testservers.XRootDOptions{})
				data, url = s.DataDir, s.URL
			}
			populate(b, data, dirs, files)
			d, err := driver.Open(context.Background(), url, driver.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				res, err := consistency.List(context.Background(), d, b.TempDir(), consistency.ListOptions{Paths: []string{"/store"}, Concurrency: 4})
				if err != nil {
					b.Fatal(err)
				}
				if res.Progress.Files != dirs*files {
					b.Fatalf("listed %d files", res.Progress.Files)
				}
			}
			b.ReportMetric(float64(dirs*files*b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}
