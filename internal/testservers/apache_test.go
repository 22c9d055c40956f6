package testservers

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

func TestApacheServesDAVOverHTTPAndTLS(t *testing.T) {
	s := Apache(t, ApacheOptions{TLS: true, ClientCert: true})
	req, _ := http.NewRequest(http.MethodPut, s.URL+"hello.txt", strings.NewReader("hi"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}
	ca, _ := os.ReadFile(s.PKI.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(s.PKI.UserCred, s.PKI.UserCred)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	resp, err = c.Get(s.TLSURL + "hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hi" {
		t.Fatalf("GET over TLS: %s %q", resp.Status, b)
	}
	// Without a client certificate the handshake must be refused.
	c = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, err := c.Get(s.TLSURL + "hello.txt"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET without a client certificate: %s, want a TLS failure", resp.Status)
	}
}
