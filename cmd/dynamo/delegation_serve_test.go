package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/delegation"
	"github.com/dynamo-go/dynamo/internal/testservers"
)

// The SAM security model through `dynamo serve`, over TLS with the test
// PKI: the station's own credential is the host certificate; Alice
// delegates a proxy with `dynamo delegate` and her stager get is prepared
// at the embedded SE under her DN (the SE's audit line says so, not the
// station's DN); once her delegation expired, the key file is gone and
// her next get fails saying so. A proxy Bob signed is refused for Alice,
// and Bob can neither read, replace, remove nor use Alice's delegation.
func TestServeStagerGetRunsWithTheUsersDelegatedProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs dynamo serve")
	}
	pki := testservers.NewPKI(t)
	alice, err := pki.NewUser("Alice")
	must(t, err)
	bob, err := pki.NewUser("Bob")
	must(t, err)
	const stationDN = "/DC=org/DC=example/CN=localhost"
	bin := buildDynamo(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "se")
	must(t, os.MkdirAll(filepath.Join(root, "store"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "store", "f.root"), []byte("alice reads this"), 0o644))
	delegDir := filepath.Join(dir, "delegations")
	port, srmPort, dataPort := freePortNumber(t), freePortNumber(t), freePortNumber(t)
	cfg := filepath.Join(dir, "dynamo.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`database: sqlite:%[1]s/dynamo.db
registry:
  listen: 127.0.0.1:%[2]s
  tls: {cert: %[3]s, key: %[4]s, ca_dir: %[5]s}
  users:
    - {name: alice, dns: [%[6]q], roles: {registry: user}}
    - {name: bob, dns: [%[7]q], roles: {registry: user}}
scheduler: {lease_period: 5s, heartbeat: 1s}
storage_elements:
  - name: T2_TEST_SE
    listen: 127.0.0.1:%[8]s
    data_listen: 127.0.0.1:%[9]s
    cert: %[3]s
    key: %[4]s
    ca_dir: %[5]s
    storage_areas:
      - {name: data, prefix: /, root: %[10]s, allow: [{dn: "*"}]}
projects:
  credential: {cert: %[3]s, key: %[4]s, ca_dir: %[5]s}
  stager:
    tick: 50ms
    backoff_start: 50ms
    backoff_cap: 500ms
    delegation: {dir: %[11]s, max_lifetime: 1h, sweep_interval: 100ms}
`, dir, port, pki.HostCert, pki.HostKey, pki.CertDir, alice.DN, bob.DN, srmPort, dataPort, root, delegDir)), 0o644))
	logPath := filepath.Join(dir, "serve.log")
	startServeArgs(t, bin, dir, "serve", "serve", "--config", cfg, "--log-format", "json")
	base := "https://localhost:" + port
	surl := "srm://localhost:" + srmPort + "/store/f.root"

	caPEM, err := os.ReadFile(pki.CA)
	must(t, err)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	clientFor := func(cred string) *http.Client {
		c, err := tls.LoadX509KeyPair(cred, cred)
		must(t, err)
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{c}, RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	}
	as := map[string]*http.Client{"alice": clientFor(alice.Cred), "bob": clientFor(bob.Cred)}
	call := func(who, method, path, ctype, body string) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, base+path, rd)
		must(t, err)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := as[who].Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitUntil(t, "the server to be ready", 90*time.Second, func() bool {
		code, _ := call("alice", "GET", "/readyz", "", "")
		return code == http.StatusOK
	})
	aliceID := delegation.ID(alice.DN)
	// Writes (the upload, stager submissions) need the writer lease.
	waitUntil(t, "the writer lease", 60*time.Second, func() bool {
		code, _ := call("alice", "DELETE", "/api/v1/delegation/"+aliceID, "", "")
		return code == http.StatusOK
	})

	// A proxy Bob signed for Alice's pending key is not Alice's.
	code, csr := call("alice", "GET", "/api/v1/delegation/"+aliceID+"/request", "", "")
	if code != http.StatusOK || !strings.Contains(csr, "CERTIFICATE REQUEST") {
		t.Fatalf("CSR: %d %s", code, csr)
	}
	bobCred, err := tls.LoadX509KeyPair(bob.Cred, bob.Cred)
	must(t, err)
	bobSigned, _, err := delegation.SignRequest([]byte(csr), bobCred, 10*time.Minute, time.Now())
	must(t, err)
	if code, b := call("alice", "PUT", "/api/v1/delegation/"+aliceID+"/credential", "application/x-pem-file", string(bobSigned)); code != http.StatusBadRequest ||
		!strings.Contains(b, "chains to "+bob.DN+", not to you") {
		t.Fatalf("alice uploads bob's proxy: %d %s", code, b)
	}

	// Alice delegates with the CLI, over TLS with her certificate.
	api := []string{"--server", base, "--cert", alice.Cert, "--key", alice.Key, "--ca-dir", pki.CertDir}
	out, err := runCLI(t, append([]string{"delegate", "-o", "json"}, api...)...)
	must(t, err)
	var info delegation.Info
	must(t, json.Unmarshal([]byte(out), &info))
	if info.DN != alice.DN || info.ID != aliceID || time.Until(info.Expires) < 50*time.Minute {
		t.Fatalf("delegation: %+v", info)
	}
	keyFile := filepath.Join(delegDir, aliceID+".pem")
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if st, err := os.Stat(delegDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("delegation dir: %v %v", st, err)
	}

	// Bob can neither read, replace, remove nor use it.
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/delegation/" + aliceID},
		{"GET", "/api/v1/delegation/" + aliceID + "/request"},
		{"PUT", "/api/v1/delegation/" + aliceID + "/credential"},
		{"DELETE", "/api/v1/delegation/" + aliceID},
	} {
		if code, b := call("bob", r.method, r.path, "application/x-pem-file", string(bobSigned)); code != http.StatusForbidden {
			t.Errorf("bob %s %s: %d %s", r.method, r.path, code, b)
		}
	}
	submit := func(who string) int64 {
		t.Helper()
		code, b := call(who, "POST", "/api/v1/stager/requests", "application/json", fmt.Sprintf(`{"kind":"get","surl":%q}`, surl))
		if code != http.StatusAccepted {
			t.Fatalf("%s submits a get: %d %s", who, code, b)
		}
		var r struct {
			Data struct {
				ID int64 `json:"id"`
			} `json:"data"`
		}
		must(t, json.Unmarshal([]byte(b), &r))
		return r.Data.ID
	}
	type result struct {
		State, TURL, Error string
	}
	settle := func(who string, id int64) result {
		t.Helper()
		var r struct {
			Data result `json:"data"`
		}
		waitUntil(t, fmt.Sprintf("stager request %d to settle", id), 30*time.Second, func() bool {
			code, b := call(who, "GET", fmt.Sprintf("/api/v1/stager/requests/%d", id), "", "")
			if code != http.StatusOK {
				t.Fatalf("lookup %d: %d %s", id, code, b)
			}
			must(t, json.Unmarshal([]byte(b), &r))
			return r.Data.State != "queued" && r.Data.State != "polling"
		})
		return r.Data
	}
	if r := settle("bob", submit("bob")); r.State != "failed" || !strings.Contains(r.Error, "user bob has delegated no credential; run dynamo delegate") {
		t.Errorf("bob's get without a delegation: %+v", r)
	}

	// Alice's get is prepared under her DN.
	r := settle("alice", submit("alice"))
	if r.State != "ready" || r.TURL == "" {
		t.Fatalf("alice's get: %+v", r)
	}
	gets := func() []map[string]any {
		f, err := os.Open(logPath)
		must(t, err)
		defer f.Close()
		var out []map[string]any
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "srm call" && m["op"] == "srmPrepareToGet" {
				out = append(out, m)
			}
		}
		return out
	}
	waitUntil(t, "the SE's audit line of alice's get", 10*time.Second, func() bool {
		for _, m := range gets() {
			if m["dn"] == alice.DN && m["surl"] == surl {
				return true
			}
		}
		return false
	})
	for _, m := range gets() {
		if m["dn"] == stationDN {
			t.Errorf("a get was prepared under the station's DN: %v", m)
		}
	}

	// A short delegation replaces the first; once it expired, its key is
	// gone and Alice's next get fails saying why.
	out, err = runCLI(t, append([]string{"delegate", "--lifetime", "3s", "-o", "json"}, api...)...)
	must(t, err)
	must(t, json.Unmarshal([]byte(out), &info))
	waitUntil(t, "the expired key to be removed", 30*time.Second, func() bool {
		_, err := os.Stat(keyFile)
		return os.IsNotExist(err)
	})
	if time.Now().Before(info.Expires) {
		t.Fatalf("the key went before the delegation expired at %s", info.Expires)
	}
	want := fmt.Sprintf("delegated credential for %s expired at %s; run dynamo delegate", alice.DN, info.Expires.UTC().Format(time.RFC3339))
	if r := settle("alice", submit("alice")); r.State != "failed" || !strings.Contains(r.Error, want) {
		t.Errorf("alice's get after expiry: %+v, want %q", r, want)
	}
	out, err = runCLI(t, append([]string{"delegate", "show"}, api...)...)
	must(t, err)
	if !strings.Contains(out, aliceID) || !strings.Contains(out, alice.DN+" expired at") {
		t.Errorf("delegate show: %s", out)
	}
}

// A token names no certificate identity: delegate refuses before calling
// anything, and says what it needs.
func TestDelegateNeedsACertificate(t *testing.T) {
	t.Setenv("X509_USER_PROXY", "")
	t.Setenv("X509_USER_CERT", "")
	_, err := runCLI(t, "delegate", "--server", "https://127.0.0.1:1", "--token", "secret")
	if err == nil || !strings.Contains(err.Error(), "--cert/--key") || !strings.Contains(err.Error(), "--proxy") {
		t.Fatalf("delegate with a token: %v", err)
	}
}
