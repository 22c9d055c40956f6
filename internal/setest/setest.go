// Package setest starts the embedded SRM storage element in-process for
// tests outside package srm (the stager, projects, estimator, fileop's srm
// driver, the CLI): the grid test PKI of testservers.GridPKI, an online
// area "/" and, unless NoTape, a nearline (tape-emulating) area "/tape"
// with a short recall delay, on a fresh SQLite database the test can
// inspect. Package srm's own tests start the SE the same way (they cannot
// import this package) with the same testservers pieces.
package setest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testservers"
	"github.com/dynamo-go/dynamo/internal/testutil"
	"github.com/dynamo-go/dynamo/srm"
	"github.com/dynamo-go/dynamo/srm/client"
	"github.com/dynamo-go/dynamo/srm/fs"
)

// Cleanup removes the PKI; call it from TestMain after m.Run.
func Cleanup() { testservers.RemoveGridPKI() }

// PKI returns the grid PKI directory of this test binary (see
// testservers.GridPKI).
func PKI(t testing.TB) string { return testservers.GridPKI(t) }

// SE is a running storage element.
type SE struct {
	*srm.Server
	PKI      string
	DB       *db.DB // the SE's request database
	Root     string // physical root of "/"
	TapeRoot string // physical root of "/tape"
	Base     string // "srm://localhost:PORT"
}

// Options tune Start.
type Options struct {
	RecallDelay time.Duration // default 300ms
	// Immediate answers gets of one file in the call (no queueing).
	Immediate bool
	// NoTape leaves out the "/tape" area.
	NoTape bool
}

// Start runs an SE until the test ends.
func Start(t testing.TB, o Options) *SE {
	t.Helper()
	pki := PKI(t)
	dir := t.TempDir()
	root, tape := filepath.Join(dir, "root"), filepath.Join(dir, "tape-root")
	for _, p := range []string{root, tape} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := srm.QuickStart(root, "127.0.0.1:0", "127.0.0.1:0",
		filepath.Join(pki, "hostcert.pem"), filepath.Join(pki, "hostkey.pem"), filepath.Join(pki, "certificates"))
	if err != nil {
		t.Fatal(err)
	}
	if o.RecallDelay == 0 {
		o.RecallDelay = 300 * time.Millisecond
	}
	cfg.Engine.PickInterval = 20 * time.Millisecond
	cfg.Engine.AgentInterval = 200 * time.Millisecond
	if o.Immediate {
		cfg.Engine.ImmediateMaxFiles = 1
	}
	if !o.NoTape {
		cfg.Areas = append(cfg.Areas, srm.AreaConfig{Name: "tape", Prefix: "/tape", Root: tape, SpaceToken: "TAPE",
			RetentionPolicy: "CUSTODIAL", AccessLatency: "NEARLINE", Driver: "nearline",
			Nearline: srm.NearlineConfig{RecallDelay: o.RecallDelay}, Protocols: []string{"https"}, Allow: []srm.Rule{{DN: "*"}}})
	}
	cfg.ApplyDefaults()
	d := testdb.SQLite(t)
	l := logrus.New()
	l.SetOutput(testservers.LogWriter{T: t})
	l.SetLevel(logrus.WarnLevel)
	s, err := srm.New(cfg, d, l.WithField("component", "srm"))
	if err != nil {
		t.Fatal(err)
	}
	testservers.Serve(t, s)
	a := s.SRMAddr().String()
	return &SE{Server: s, PKI: pki, DB: d, Root: root, TapeRoot: tape, Base: "srm://localhost:" + a[strings.LastIndexByte(a, ':')+1:]}
}

// ClientOptions are SRM client options with the test user's proxy.
func (se *SE) ClientOptions(t testing.TB) client.Options {
	t.Helper()
	cred, err := client.LoadCredential(filepath.Join(se.PKI, "proxy.pem"), "")
	if err != nil {
		t.Fatal(err)
	}
	return client.Options{Certificate: cred, CADir: filepath.Join(se.PKI, "certificates"), PollInterval: 20 * time.Millisecond}
}

// HTTPClient is an HTTPS client for the SE's data endpoint (TURLs) with the
// test user's proxy.
func (se *SE) HTTPClient(t testing.TB) *http.Client {
	t.Helper()
	o := se.ClientOptions(t)
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(filepath.Join(se.PKI, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{o.Certificate}, RootCAs: pool}}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// Client returns an SRM client for the SE.
func (se *SE) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(se.Base, se.ClientOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	return c
}

// Put writes a file directly into an area's physical root ("/" or "/tape"
// by the SURL path) and, for the tape area, migrates it and purges the
// disk copy so that it is NEARLINE. path is the SURL path ("/tape/a/f").
func (se *SE) Put(t testing.TB, path string, data []byte, nearline bool) string {
	t.Helper()
	c := se.Client(t)
	ctx := context.Background()
	surl := se.Base + path
	turl, tok, err := c.PutTURL(ctx, surl, int64(len(data)), true, "https")
	if err != nil {
		t.Fatalf("put %s: %v", path, err)
	}
	req, err := http.NewRequest(http.MethodPut, turl, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := se.HTTPClient(t).Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", turl, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s: %s", turl, resp.Status)
	}
	if st, err := c.PutDone(ctx, tok, surl); err != nil || st[0].Code != "SRM_SUCCESS" {
		t.Fatalf("PutDone %s: %+v %v", path, st, err)
	}
	if nearline {
		loc, err := se.Namespace().Resolve(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := loc.Area.Driver().(fs.Stager).Purge(ctx, loc.Name); err != nil {
			t.Fatal(err)
		}
	}
	return surl
}

// Mkdir creates the directory of path at the SE (parents included).
func (se *SE) Mkdir(t testing.TB, path string) {
	t.Helper()
	c := se.Client(t)
	p := ""
	for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
		p += "/" + part
		if err := c.Mkdir(context.Background(), se.Base+p); err != nil && !strings.Contains(err.Error(), "DUPLICATION") {
			t.Fatalf("mkdir %s: %v", p, err)
		}
	}
}

// Pinned counts the files the SE holds pinned (gets in SRM_FILE_PINNED,
// bring-onlines in SRM_SUCCESS) and the requests still queued or in
// progress: what a leak would leave behind.
func (se *SE) Pinned(t testing.TB) (pinned, open int) {
	t.Helper()
	ctx := context.Background()
	if err := se.DB.GetContext(ctx, &pinned, "SELECT COUNT(*) FROM srm_files WHERE status = ?", int(srm.SRM_FILE_PINNED)); err != nil {
		t.Fatal(err)
	}
	if err := se.DB.GetContext(ctx, &open, "SELECT COUNT(*) FROM srm_files WHERE status IN (?, ?)",
		int(srm.SRM_REQUEST_QUEUED), int(srm.SRM_REQUEST_INPROGRESS)); err != nil {
		t.Fatal(err)
	}
	return pinned, open
}

// Recalling is how many tape recalls the SE still has under way, read
// from its dynamo_srm_recalls_in_progress gauge. A recall outlives the
// request that started it (an abort does not stop the tape), so what a
// finished recall leaves behind can only be checked once this is 0.
func (se *SE) Recalling(t testing.TB) int {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := se.RegisterMetrics(reg, nil); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "dynamo_srm_recalls_in_progress" && len(mf.Metric) == 1 {
			return int(mf.Metric[0].GetGauge().GetValue())
		}
	}
	t.Fatal("the SE exports no dynamo_srm_recalls_in_progress gauge")
	return 0
}

// NoLeaks waits until the SE's recalls have finished and it then holds no
// pin and no open request, and fails t if that does not happen: whatever
// a client forgot to release, or a late recall pinned for an aborted
// request, shows here.
func (se *SE) NoLeaks(t testing.TB) {
	t.Helper()
	testutil.Eventually(t, time.Minute, "the SE's tape recalls to finish", func() bool { return se.Recalling(t) == 0 })
	var p, o int
	if !testutil.Poll(30*time.Second, func() bool { p, o = se.Pinned(t); return p == 0 && o == 0 }) {
		t.Fatalf("the SE still holds %d pins and %d open requests", p, o)
	}
}

// FileStatuses returns the SE's status name of every file of the request
// with token tok.
func (se *SE) FileStatuses(t testing.TB, tok string) []string {
	t.Helper()
	var codes []int
	if err := se.DB.SelectContext(context.Background(), &codes, `SELECT f.status FROM srm_files f JOIN srm_requests r ON r.id = f.request_id
		WHERE r.token = ? ORDER BY f.idx`, tok); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = srm.StatusCode(c).String()
	}
	return out
}
