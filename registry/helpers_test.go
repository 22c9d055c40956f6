package registry

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

var (
	oidDC            = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidCN            = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidProxyCertInfo = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 14}
	oidInheritAll    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 21, 1}
)

// testPKI is a throwaway grid PKI made in Go: a CA in a hashed CA dir, a
// host certificate for localhost, and user certificates by name.
type testPKI struct {
	dir      string
	caCert   *x509.Certificate
	caKey    *ecdsa.PrivateKey
	hostCert string
	hostKey  string
	pool     *x509.CertPool
}

func gridName(cns ...string) pkix.Name {
	n := pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidDC, Value: "org"}, {Type: oidDC, Value: "example"}}}
	for _, cn := range cns {
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: oidCN, Value: cn})
	}
	return n
}

func gridDN(cns ...string) string { return "/DC=org/DC=example/CN=" + strings.Join(cns, "/CN=") }

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newPKI(t testing.TB) *testPKI {
	dir := t.TempDir()
	p := &testPKI{dir: dir, caKey: newKey(t)}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: gridName("Test CA"), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.caCert)
	if err := os.MkdirAll(filepath.Join(dir, "certificates"), 0o755); err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "certificates", "abcdef01.0"), "CERTIFICATE", der)

	hk := newKey(t)
	ht := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: gridName("localhost"), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	hder, err := x509.CreateCertificate(rand.Reader, ht, p.caCert, &hk.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.hostCert, p.hostKey = filepath.Join(dir, "hostcert.pem"), filepath.Join(dir, "hostkey.pem")
	writePEM(t, p.hostCert, "CERTIFICATE", hder)
	kder, _ := x509.MarshalECPrivateKey(hk)
	writePEM(t, p.hostKey, "EC PRIVATE KEY", kder)
	return p
}

var serial int64 = 100

// user issues a client certificate for CN=name; with proxy, it returns an
// RFC 3820 proxy chain (proxy, EEC) signed by the user's key instead.
func (p *testPKI) user(t testing.TB, name string, proxy bool, signer *x509.Certificate, signerKey *ecdsa.PrivateKey) tls.Certificate {
	k := newKey(t)
	serial++
	if signer == nil {
		signer, signerKey = p.caCert, p.caKey
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: gridName(name), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &k.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	if !proxy {
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	eec, _ := x509.ParseCertificate(der)
	pk := newKey(t)
	info, _ := asn1.Marshal(struct {
		Policy struct{ Lang asn1.ObjectIdentifier }
	}{struct{ Lang asn1.ObjectIdentifier }{oidInheritAll}})
	pt := &x509.Certificate{SerialNumber: big.NewInt(424242), Subject: gridName(name, "424242"), NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().Add(12 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: oidProxyCertInfo, Critical: true, Value: info}}}
	pder, err := x509.CreateCertificate(rand.Reader, pt, eec, &pk.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{pder, der}, PrivateKey: pk}
}

// fixture is the inventory every test starts with.
const fixture = `{
 "sites": [{"name": "T2_A", "storage_type": "disk", "status": "ready", "host": "se.a", "quotas": {"Default": 1000000000000}},
           {"name": "T2_B", "storage_type": "disk", "status": "ready", "quotas": {"Default": 500000000000}},
           {"name": "T1_C_MSS", "storage_type": "mss", "status": "ready"}],
 "groups": [{"name": "AnalysisOps", "olevel": "dataset"}, {"name": "DataOps", "olevel": "dataset"}],
 "datasets": [
  {"name": "/P/R-v1/AOD", "status": "valid", "data_type": "mc", "is_open": false, "blocks": [
     {"name": "b1", "files": [{"lfn": "/store/p/1.root", "size": 100, "adler32": "0000abcd"}, {"lfn": "/store/p/2.root", "size": 50}]},
     {"name": "b2", "size": 30, "num_files": 3}]},
  {"name": "/P/R-v2/AOD", "status": "valid", "data_type": "mc", "is_open": false, "blocks": [{"name": "c1", "size": 10, "num_files": 1}]},
  {"name": "/Q/R-v1/MINIAOD", "status": "production", "data_type": "data", "is_open": true, "blocks": [{"name": "d1", "size": 7, "num_files": 1}]}],
 "dataset_replicas": [{"dataset": "/P/R-v1/AOD", "site": "T2_A", "group": "AnalysisOps", "growing": false},
                      {"dataset": "/P/R-v2/AOD", "site": "T2_B", "group": "DataOps", "growing": true}]
}`

type tenv struct {
	t     *testing.T
	srv   *Server
	inv   *inventory.Store
	d     *db.DB
	pki   *testPKI
	url   string
	certs map[string]tls.Certificate
	now   time.Time
}

// newEnv starts a real HTTPS server on 127.0.0.1 with the fixture
// inventory and users alice, bob (user), oscar (operator), ada (admin).
func newEnv(t *testing.T, d *db.DB, mutate func(*Config)) *tenv {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	ctx := context.Background()
	inv, err := inventory.Load(ctx, d, log.WithField("component", "inventory"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := inventory.DecodeInjectDoc(strings.NewReader(fixture))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Inject(ctx, time.Now(), doc); err != nil {
		t.Fatal(err)
	}
	pki := newPKI(t)
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.TLS = TLSConfig{Cert: pki.hostCert, Key: pki.hostKey, CADir: filepath.Join(pki.dir, "certificates")}
	cfg.Users = []UserConfig{
		{Name: "alice", DNs: []string{gridDN("Alice")}, Roles: map[string]string{"registry": "user"}},
		{Name: "bob", DNs: []string{gridDN("Bob")}, Roles: map[string]string{"registry": "user"}},
		{Name: "oscar", DNs: []string{gridDN("Oscar")}, Roles: map[string]string{"*": "operator"}},
		{Name: "ada", DNs: []string{gridDN("Ada")}, Roles: map[string]string{"*": "admin"}},
		{Name: "detox-svc", Roles: map[string]string{"registry": "user"}},
	}
	cfg.Tokens = []TokenConfig{{User: "detox-svc", Token: "s3cret-token"}}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(Options{Config: cfg, DB: d, Log: log.WithField("component", "registry"), Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(runCtx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	e := &tenv{t: t, srv: srv, inv: inv, d: d, pki: pki, url: "https://" + ln.Addr().String(), certs: map[string]tls.Certificate{}, now: time.Now()}
	for _, u := range []string{"Alice", "Bob", "Oscar", "Ada", "Mallory"} {
		e.certs[strings.ToLower(u)] = pki.user(t, u, false, nil, nil)
	}
	e.certs["alice-proxy"] = pki.user(t, "Alice", true, nil, nil)
	other := newPKI(t) // a CA the server does not trust
	e.certs["untrusted"] = other.user(t, "Alice", false, nil, nil)
	return e
}

// call sends a request as who: a key of certs, "anon", or "token:T".
func (e *tenv) call(who, method, path string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tc := &tls.Config{RootCAs: e.pki.pool}
	switch {
	case who == "anon":
	case strings.HasPrefix(who, "token:"):
		req.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(who, "token:"))
	default:
		c, ok := e.certs[who]
		if !ok {
			e.t.Fatalf("no identity %q", who)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}
	defer cl.CloseIdleConnections()
	resp, err := cl.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// must calls and checks the status, decoding the body into out (if non-nil).
func (e *tenv) must(who, method, path string, body any, want int, out any) []byte {
	e.t.Helper()
	code, b := e.call(who, method, path, body)
	if code != want {
		e.t.Fatalf("%s %s as %s: status %d, want %d: %s", method, path, who, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return b
}

func tlsFor(e *tenv) *tls.Config { return &tls.Config{RootCAs: e.pki.pool} }
