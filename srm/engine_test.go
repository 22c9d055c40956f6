package srm

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/srm/client"
)

// clientFor returns an SRM client with the test user's proxy, and an HTTPS
// client for the data endpoint with the same credential.
func clientFor(t testing.TB, se *testSE) (*client.Client, *http.Client, string) {
	t.Helper()
	cred, err := client.LoadCredential(filepath.Join(se.PKI, "proxy.pem"), "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New("srm://localhost:"+port(se.SRMAddr().String()), client.Options{Certificate: cred,
		CADir: filepath.Join(se.PKI, "certificates"), PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(filepath.Join(se.PKI, "ca.pem"))
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cred}, RootCAs: pool}}}
	t.Cleanup(hc.CloseIdleConnections)
	return c, hc, "srm://localhost/"
}

func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func httpDo(t testing.TB, hc *http.Client, method, url string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	must(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestEngine covers the asynchronous requests end to end through our own
// client, on SQLite and MariaDB.
func TestEngine(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		se := startSE(t, d, func(c *Config) {
			c.Areas[0].OnlineSizeLimit = 1 << 20
			c.MaxLsEntries = 5
		})
		c, hc, S := clientFor(t, se)
		ctx := context.Background()

		ver, info, err := c.Ping(ctx)
		if err != nil || ver != "v2.2" || info["backend_type"] != "dynamo" {
			t.Fatalf("Ping = %q %v %v", ver, info, err)
		}
		must(t, c.Mkdir(ctx, S+"d"))
		if err := c.Mkdir(ctx, S+"d"); !errors.Is(err, client.ErrExists) {
			t.Errorf("Mkdir existing: %v", err)
		}
		if err := c.Mkdir(ctx, S+"x/y"); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("Mkdir without parent: %v", err)
		}

		// Upload: PrepareToPut, HTTP PUT to the TURL, PutDone.
		payload := []byte("0123456789abcdef")
		turl, tok, err := c.PutTURL(ctx, S+"d/f1", int64(len(payload)), false, "gsiftp", "https")
		must(t, err)
		if !strings.HasPrefix(turl, "https://localhost:") {
			t.Fatalf("TURL %q", turl)
		}
		// While the upload holds the SURL: Ls says busy, a second put
		// without overwrite is a duplication. A PUT elsewhere is a WebDAV
		// upload of its own, accounted in the area at once.
		if _, err := c.Stat(ctx, S+"d/f1"); !errors.Is(err, client.ErrBusy) {
			t.Errorf("Stat during upload: %v", err)
		}
		if _, _, err := c.PutTURL(ctx, S+"d/f1", 1, false, "https"); !errors.Is(err, client.ErrExists) {
			t.Errorf("second put: %v", err)
		}
		davURL, _, _ := strings.Cut(strings.Replace(turl, "f1", "other", 1), "?")
		if resp, _ := httpDo(t, hc, "PUT", davURL, payload); resp.StatusCode != http.StatusCreated {
			t.Errorf("WebDAV PUT without srmPrepareToPut: %d", resp.StatusCode)
		}
		if resp, b := httpDo(t, hc, "PUT", turl, payload); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT: %d %s", resp.StatusCode, b)
		}
		fs, err := c.PutDone(ctx, tok, S+"d/f1")
		must(t, err)
		if fs[0].Code != "SRM_SUCCESS" {
			t.Fatalf("PutDone: %+v", fs)
		}
		if fs, _ := c.PutDone(ctx, tok, S+"d/f1"); len(fs) != 1 || fs[0].Code != "SRM_DUPLICATION_ERROR" {
			t.Errorf("second PutDone: %+v", fs)
		}
		e, err := c.Stat(ctx, S+"d/f1")
		must(t, err)
		if e.Size != int64(len(payload)) || e.Checksum != adler32Hex(payload) || e.Locality != "ONLINE" {
			t.Errorf("Stat = %+v", e)
		}
		if got := se.Namespace().Areas()[0].Used(); got != 2*int64(len(payload)) {
			t.Errorf("used space = %d", got)
		}

		// Download: TURL, ranged GET, HEAD with digest, release.
		turl, tok, err = c.GetTURL(ctx, S+"d/f1", "https")
		must(t, err)
		if resp, b := httpDo(t, hc, "GET", turl, nil, "Range", "bytes=2-5"); resp.StatusCode != http.StatusPartialContent || string(b) != "2345" {
			t.Errorf("ranged GET: %d %q", resp.StatusCode, b)
		}
		if resp, _ := httpDo(t, hc, "HEAD", turl, nil, "Want-Digest", "adler32"); resp.Header.Get("Digest") != "adler32="+adler32Hex(payload) {
			t.Errorf("HEAD digest: %q", resp.Header.Get("Digest"))
		}
		if resp, _ := httpDo(t, hc, "POST", turl, []byte("{}"), "Content-Type", "application/macaroon-request"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("macaroon POST without activities: %d, want 400", resp.StatusCode)
		}
		// A third-party pull from a missing source fails before any marker.
		_, ptok, err := c.PutTURL(ctx, S+"d/tpc", -1, false, "https")
		must(t, err)
		pr := &client.Request{Token: ptok, Type: "srmPrepareToPut"}
		must(t, c.Status(ctx, pr))
		if resp, b := httpDo(t, hc, "COPY", pr.Files[0].TURL, nil, "Source", strings.Replace(turl, "f1", "missing", 1)); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("COPY from a missing source: %d %s", resp.StatusCode, b)
		}
		// The pull acts only with the credential the client hands over (a
		// macaroon for the source), never with the SE's host certificate.
		if resp, b := httpDo(t, hc, "COPY", pr.Files[0].TURL, nil, "Source", turl); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("COPY pull without a credential for the source: %d %q", resp.StatusCode, b)
		}
		_, mac := mintMacaroon(t, hc, turl, nil, "activity:DOWNLOAD")
		if resp, b := httpDo(t, hc, "COPY", pr.Files[0].TURL, nil, "Source", turl, "TransferHeaderAuthorization", "Bearer "+mac); resp.StatusCode != http.StatusAccepted || !strings.HasSuffix(string(b), "success: Created\n") {
			t.Errorf("COPY pull: %d %q", resp.StatusCode, b)
		}
		// The pull is staged: the name appears at srmPutDone.
		if _, err := os.Stat(filepath.Join(se.Root, "d/tpc")); !os.IsNotExist(err) {
			t.Errorf("pulled data visible before srmPutDone: %v", err)
		}
		if fs, err := c.PutDone(ctx, ptok, S+"d/tpc"); err != nil || fs[0].Code != "SRM_SUCCESS" {
			t.Fatalf("PutDone after pull: %+v %v", fs, err)
		}
		if got, _ := os.ReadFile(filepath.Join(se.Root, "d/tpc")); !bytes.Equal(got, payload) {
			t.Errorf("pulled content %q", got)
		}
		fs, err = c.ReleaseFiles(ctx, tok)
		if err != nil || fs[0].Code != "SRM_SUCCESS" {
			t.Errorf("ReleaseFiles: %+v %v", fs, err)
		}
		if _, _, err := c.GetTURL(ctx, S+"d/f1", "gsiftp"); !errors.Is(err, client.ErrNotSupported) {
			t.Errorf("get with no served protocol: %v", err)
		}
		if _, _, err := c.GetTURL(ctx, S+"d/none", "https"); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("get of missing file: %v", err)
		}

		// Abort of an upload removes its placeholder and frees the SURL.
		_, tok, err = c.PutTURL(ctx, S+"d/f2", 10, false, "https")
		must(t, err)
		must(t, c.AbortRequest(ctx, tok))
		if _, err := os.Stat(filepath.Join(se.Root, "d/f2")); !os.IsNotExist(err) {
			t.Errorf("aborted upload left its file: %v", err)
		}
		if _, err := c.Stat(ctx, S+"d/f2"); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("Stat after abort: %v", err)
		}

		// A full area answers SRM_NO_FREE_SPACE.
		if _, _, err := c.PutTURL(ctx, S+"d/big", 2<<20, false, "https"); !errors.Is(err, client.ErrNoSpace) {
			t.Errorf("oversized put: %v", err)
		}

		// Paging: 10 entries (f1, other, tpc, 7 dirs) with max_ls_entries 5.
		for i := 0; i < 7; i++ {
			must(t, c.Mkdir(ctx, S+"d/sub"+string(rune('a'+i))))
		}
		list, err := c.List(ctx, S+"d", 0)
		must(t, err)
		if len(list) != 10 {
			t.Errorf("List paged %d entries, want 10", len(list))
		}
		if err := c.Rmdir(ctx, S+"d", false); !errors.Is(err, client.ErrNotEmpty) {
			t.Errorf("Rmdir non-empty: %v", err)
		}
		must(t, c.Mv(ctx, S+"d/f1", S+"d/suba"))
		if _, err := c.Stat(ctx, S+"d/suba/f1"); err != nil {
			t.Errorf("Mv into a directory: %v", err)
		}

		// Pins expire.
		_, tok, err = c.GetTURL(ctx, S+"d/suba/f1", "https")
		must(t, err)
		must(t, se.engine.expire(ctx, time.Now().Add(2*time.Hour)))
		r := &client.Request{Token: tok, Type: "srmPrepareToGet"}
		must(t, c.Status(ctx, r))
		if r.Files[0].Code != "SRM_RELEASED" {
			t.Errorf("after pin expiry: %+v", r.Files)
		}

		fs, err = c.Rm(ctx, S+"d/suba/f1", S+"d/nope")
		if err != nil || fs[0].Code != "SRM_SUCCESS" || fs[1].Code != "SRM_INVALID_PATH" {
			t.Errorf("Rm: %+v %v", fs, err)
		}
		must(t, c.Rmdir(ctx, S+"d", true))
		if got := se.Namespace().Areas()[0].Used(); got != 0 {
			t.Errorf("used space after removal = %d", got)
		}
	})
}

// TestQueueFull: beyond max_queued, requests are refused with the
// retryable SRM_INTERNAL_ERROR, and nothing is stored for them.
func TestQueueFull(t *testing.T) {
	se := startSE(t, nil, func(c *Config) {
		c.Engine.MaxQueued = 3
		c.Engine.PickInterval = time.Hour // nothing gets picked
	})
	c, _, S := clientFor(t, se)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		r, err := c.PrepareToGet(ctx, []string{S + "x"}, []string{"https"}, 0)
		if err != nil || r.Code != "SRM_REQUEST_QUEUED" {
			t.Fatalf("request %d: %+v %v", i, r, err)
		}
	}
	_, err := c.PrepareToGet(ctx, []string{S + "x"}, []string{"https"}, 0)
	if !errors.Is(err, client.ErrInternal) {
		t.Fatalf("4th request: %v, want SRM_INTERNAL_ERROR", err)
	}
	var n int
	must(t, se.db.Get(&n, "SELECT COUNT(*) FROM srm_requests"))
	if n != 3 {
		t.Errorf("%d requests stored, want 3", n)
	}
}

// TestSOAPEndpoint: WSDL on GET, faults on bad input, bounded bodies,
// NOT_SUPPORTED for unimplemented methods.
func TestSOAPEndpoint(t *testing.T) {
	se := startSE(t, nil, func(c *Config) { c.MaxBodyBytes = 8192 })
	c, _, _ := clientFor(t, se)
	_ = c
	cred, _ := client.LoadCredential(filepath.Join(se.PKI, "proxy.pem"), "")
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(filepath.Join(se.PKI, "ca.pem"))
	pool.AppendCertsFromPEM(ca)
	post := func(method, body string, path ...string) (int, string) {
		conn, err := tls.Dial("tcp", se.SRMAddr().String(), &tls.Config{Certificates: []tls.Certificate{cred}, RootCAs: pool, ServerName: "localhost"})
		must(t, err)
		defer conn.Close()
		u := "http://localhost/srm/managerv2"
		if len(path) > 0 {
			u = "http://localhost" + path[0]
		}
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		_, _ = conn.Write([]byte("0"))
		must(t, req.Write(conn))
		resp, err := http.ReadResponse(bufioReader(conn), req)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{WSDLPath, "/srm/managerv2?wsdl"} {
		if code, b := post("GET", "", p); code != 200 || !strings.Contains(b, "srmPrepareToGet") {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	for _, p := range []string{"/srm/managerv2", "/", "/etc/passwd", "/srm/managerv2?x", "/anything.wsdl"} {
		if code, b := post("GET", "", p); code != 404 || strings.Contains(b, "srmPrepareToGet") {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
	// Only the SOAP 1.1 envelope is executed: SOAP 1.2, no namespace, a
	// Body in another namespace are faults.
	for _, env := range []string{
		`<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><s:srmPing xmlns:s="` + NSSRM + `"/></e:Body></e:Envelope>`,
		`<Envelope><Body><srmPing/></Body></Envelope>`,
		`<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><f:Body xmlns:f="urn:other"><srmPing/></f:Body></e:Envelope>`,
	} {
		if code, b := post("POST", env); code != 500 || !strings.Contains(b, "Fault") || strings.Contains(b, "versionInfo") {
			t.Errorf("foreign envelope executed: %d %s", code, b)
		}
	}
	if code, b := post("POST", `<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><srmPing/></Body></Envelope>`); code != 200 || !strings.Contains(b, "v2.2") {
		t.Errorf("default-namespace SOAP 1.1 envelope: %d %s", code, b)
	}
	if code, b := post("POST", "<nope"); code != 500 || !strings.Contains(b, "Fault") {
		t.Errorf("malformed: %d %s", code, b)
	}
	big := `<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><srmLs><r>` + strings.Repeat("<x>y</x>", 5000) + `</r></srmLs></Body></Envelope>`
	if code, b := post("POST", big); code != 500 || !strings.Contains(b, "larger than 8192") {
		t.Errorf("oversized: %d %s", code, b)
	}
	env := `<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><s:srmCopy xmlns:s="` + NSSRM + `"><srmCopyRequest/></s:srmCopy></e:Body></e:Envelope>`
	if code, b := post("POST", env); code != 200 || !strings.Contains(b, "SRM_NOT_SUPPORTED") || !strings.Contains(b, "srmCopyResponse") {
		t.Errorf("srmCopy: %d %s", code, b)
	}
	// A delegation request ('D') is refused: the connection closes.
	conn, err := tls.Dial("tcp", se.SRMAddr().String(), &tls.Config{Certificates: []tls.Certificate{cred}, RootCAs: pool, ServerName: "localhost"})
	must(t, err)
	_, _ = conn.Write([]byte("DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"))
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _ := conn.Read(make([]byte, 10)); n != 0 {
		t.Error("delegation flag accepted")
	}
	conn.Close()
	// Without a client certificate the handshake fails.
	if conn, err := tls.Dial("tcp", se.SRMAddr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost"}); err == nil {
		_, _ = conn.Write([]byte("0"))
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, _ := conn.Read(make([]byte, 10)); n != 0 {
			t.Error("anonymous client got an answer")
		}
		conn.Close()
	}
}

// TestConnectionLimit: with max_connections 2, a third client waits until
// a slot frees, then gets served.
func TestConnectionLimit(t *testing.T) {
	se := startSE(t, nil, func(c *Config) { c.MaxConnections = 2 })
	var held []net.Conn
	for i := 0; i < 2; i++ {
		conn, err := net.Dial("tcp", se.SRMAddr().String())
		must(t, err)
		held = append(held, conn)
	}
	c, _, _ := clientFor(t, se)
	done := make(chan error, 1)
	go func() { _, _, err := c.Ping(context.Background()); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("third connection served while two slots were taken: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	held[0].Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("third connection not served after a slot freed")
	}
	held[1].Close()
}
