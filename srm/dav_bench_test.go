package srm

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/testservers"
)

// patternReader yields n bytes of a repeating pattern without touching a
// disk, so the client side costs the same for both servers.
type patternReader struct {
	n, off int64
	pat    []byte
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(b) && p.off < p.n {
		c := copy(b[k:], p.pat[p.off%int64(len(p.pat)):])
		if rem := p.n - p.off; int64(c) > rem {
			c = int(rem)
		}
		k += c
		p.off += int64(c)
	}
	return k, nil
}

func newPattern(n int64) *patternReader {
	return &patternReader{n: n, pat: bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz"), 1<<14)}
}

// best runs f reps times and returns the fastest run.
func best(b *testing.B, reps int, f func() error) time.Duration {
	b.Helper()
	var min time.Duration
	for i := 0; i < reps; i++ {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		if d := time.Since(start); min == 0 || d < min {
			min = d
		}
	}
	return min
}

func benchDo(hc *http.Client, method, url string, body io.Reader, size int64, hdr ...string) error {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.ContentLength = size
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: HTTP %d", method, url, resp.StatusCode)
	}
	if method == http.MethodGet && size > 0 && n != size {
		return fmt.Errorf("GET %s: %d of %d bytes", url, n, size)
	}
	return nil
}

// BenchmarkWebDAVvsApache measures, side by side in one run over HTTPS on
// the same disk, this SE and Apache httpd with mod_dav: a 1 GiB GET and
// PUT, a PROPFIND Depth 1 of a 10,000-entry collection, and a 1 GiB
// third-party pull against a client GET followed by a PUT. Ratios above 1
// mean the SE is faster. Run with -benchtime 1x (each figure is the best
// of three). DYNAMO_BENCH_SIZE overrides the file size in bytes.
func BenchmarkWebDAVvsApache(b *testing.B) {
	size := int64(1 << 30)
	if v := os.Getenv("DYNAMO_BENCH_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		must(b, err)
		size = n
	}
	const entries = 10000
	const reps = 3
	ap := testservers.Apache(b, testservers.ApacheOptions{TLS: true})
	se1 := startSE(b, nil, nil)
	se2 := startSE(b, nil, nil)
	_, hc, _ := clientFor(b, se1)
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(ap.PKI.CA)
	pool.AppendCertsFromPEM(ca)
	apc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	A := strings.TrimSuffix(ap.TLSURL, "/")
	S1, S2 := httpsBase(se1), httpsBase(se2)

	for i := 0; i < b.N; i++ {
		put := func(hc *http.Client, url string) func() error {
			return func() error { return benchDo(hc, http.MethodPut, url, newPattern(size), size) }
		}
		get := func(hc *http.Client, url string) func() error {
			return func() error { return benchDo(hc, http.MethodGet, url, nil, size) }
		}
		// Alternating runs: load from other jobs hits both alike.
		var putA, putS, getA, getS time.Duration
		for r := 0; r < reps; r++ {
			d := best(b, 1, put(apc, A+"/big"))
			if putA == 0 || d < putA {
				putA = d
			}
			d = best(b, 1, put(hc, S1+"/big"))
			if putS == 0 || d < putS {
				putS = d
			}
		}
		for r := 0; r < reps; r++ {
			d := best(b, 1, get(apc, A+"/big"))
			if getA == 0 || d < getA {
				getA = d
			}
			d = best(b, 1, get(hc, S1+"/big"))
			if getS == 0 || d < getS {
				getS = d
			}
		}
		mbs := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e6 }
		b.ReportMetric(mbs(getS), "se-GET-MB/s")
		b.ReportMetric(mbs(getA), "apache-GET-MB/s")
		b.ReportMetric(getA.Seconds()/getS.Seconds(), "GET-ratio")
		b.ReportMetric(mbs(putS), "se-PUT-MB/s")
		b.ReportMetric(mbs(putA), "apache-PUT-MB/s")
		b.ReportMetric(putA.Seconds()/putS.Seconds(), "PUT-ratio")

		// PROPFIND Depth 1 of 10,000 entries, davix's listing body.
		for _, d := range []string{filepath.Join(ap.DataDir, "many"), filepath.Join(se1.Root, "many")} {
			must(b, os.MkdirAll(d, 0o755))
			for k := 0; k < entries; k++ {
				must(b, os.WriteFile(filepath.Join(d, "f"+strconv.Itoa(k)), nil, 0o644))
			}
		}
		body := `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" xmlns:L="LCGDM:"><D:prop><D:displayname/><D:getlastmodified/><D:creationdate/><D:getcontentlength/><D:quota-used-bytes/><D:resourcetype><D:collection/></D:resourcetype><L:mode/><D:owner></D:owner><D:group></D:group></D:prop></D:propfind>`
		pf := func(hc *http.Client, url string) func() error {
			return func() error {
				return benchDo(hc, "PROPFIND", url, strings.NewReader(body), int64(len(body)), "Depth", "1", "Content-Type", "application/xml")
			}
		}
		var pfA, pfS time.Duration
		for r := 0; r < reps; r++ {
			d := best(b, 1, pf(apc, A+"/many/"))
			if pfA == 0 || d < pfA {
				pfA = d
			}
			d = best(b, 1, pf(hc, S1+"/many/"))
			if pfS == 0 || d < pfS {
				pfS = d
			}
		}
		b.ReportMetric(float64(pfS.Milliseconds()), "se-PROPFIND-ms")
		b.ReportMetric(float64(pfA.Milliseconds()), "apache-PROPFIND-ms")
		b.ReportMetric(pfA.Seconds()/pfS.Seconds(), "PROPFIND-ratio")

		// Third-party pull SE1 -> SE2 against GET from SE1 then PUT to SE2.
		code, mac := mintMacaroon(b, hc, S1+"/big", nil, "activity:DOWNLOAD")
		if code != 200 {
			b.Fatalf("macaroon: %d %s", code, mac)
		}
		tpc := func() error {
			req, _ := http.NewRequest("COPY", S2+"/tpc", nil)
			req.Header.Set("Source", S1+"/big")
			req.Header.Set("TransferHeaderAuthorization", "Bearer "+mac)
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			if !bytes.HasSuffix(out, []byte("success: Created\n")) {
				return fmt.Errorf("COPY: %d %s", resp.StatusCode, out)
			}
			return nil
		}
		// A plain GET followed by a PUT, without client disk: the best GET
		// and PUT measured above.
		tGP := getS + putS
		var tT time.Duration
		for r := 0; r < reps; r++ {
			if d := best(b, 1, tpc); tT == 0 || d < tT {
				tT = d
			}
		}
		b.ReportMetric(mbs(tT), "se-TPC-pull-MB/s")
		b.ReportMetric(mbs(tGP), "GET+PUT-MB/s")
		b.ReportMetric(tGP.Seconds()/tT.Seconds(), "TPC-ratio")
	}
}
