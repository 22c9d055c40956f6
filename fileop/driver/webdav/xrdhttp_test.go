package webdav_test

import (
	"bytes"
	"context"
	"errors"
	"hash/adler32"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/fileop/driver/drivertest"
	"github.com/dynamo-go/dynamo/internal/testservers"
)

// TestConformanceXrdHttp runs the suite against XRootD's HTTP/WebDAV
// front end, a second real server that, unlike Apache, answers
// Want-Digest: adler32.
func TestConformanceXrdHttp(t *testing.T) {
	s := testservers.XRootD(t, testservers.XRootDOptions{HTTP: true})
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		d, err := driver.Open(context.Background(), s.HTTPURL, driver.Options{CACertDir: s.PKI.CertDir})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, drivertest.Caps{Checksum: true, ListEntries: 200})
}

// TestThirdPartyCopyPull has XrdHttp's WLCG TPC handler pull a file from
// Apache: the COPY goes to the destination with a Source header.
func TestThirdPartyCopyPull(t *testing.T) {
	src := testservers.Apache(t, testservers.ApacheOptions{})
	dst := testservers.XRootD(t, testservers.XRootDOptions{HTTP: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := bytes.Repeat([]byte("tpc-data "), 100_000)
	req, _ := http.NewRequest(http.MethodPut, src.URL+"src.bin", bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	d, err := driver.Open(ctx, dst.HTTPURL, driver.Options{CACertDir: dst.PKI.CertDir})
	if err != nil {
		t.Fatal(err)
	}
	tpc, ok := d.(driver.ThirdPartyCopier)
	if !ok {
		t.Fatal("webdav driver is no ThirdPartyCopier")
	}
	var progress []int64
	err = tpc.CopyFrom(ctx, "pulled.bin", src.URL+"src.bin", driver.TPCOptions{OnProgress: func(n int64) { progress = append(progress, n) }})
	if err != nil {
		t.Fatalf("TPC pull: %v\n%s", err, readLog(dst.Log))
	}
	rc, err := d.Open(ctx, "pulled.bin", driver.Range{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("pulled %d bytes, want %d", len(got), len(data))
	}
	sum, err := d.(driver.Checksummer).Checksum(ctx, "pulled.bin", driver.AlgoAdler32)
	if err != nil || sum != driver.FormatAdler32(adler32.Checksum(data)) {
		t.Fatalf("checksum after TPC = %q, %v", sum, err)
	}
	t.Logf("perf markers seen: %v", progress)

	// A missing source must fail, and not as success.
	err = tpc.CopyFrom(ctx, "never.bin", src.URL+"missing.bin", driver.TPCOptions{})
	if err == nil {
		t.Fatal("TPC of a missing source succeeded")
	}
	var de *driver.Error
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "tpc") {
		t.Fatalf("TPC failure not a driver error: %v", err)
	}
	// XrdHttpTPC reports the source's 404 only as text in "failure: ...";
	// the message fallback must still classify it as irrecoverable.
	if !errors.Is(err, driver.ErrNotFound) || driver.Recoverable(err) {
		t.Fatalf("TPC of a missing source: %v, want irrecoverable ErrNotFound", err)
	}
	t.Logf("missing-source TPC error: %v", err)
}

func readLog(p string) string {
	b, _ := os.ReadFile(p)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}
