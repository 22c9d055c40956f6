package pki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/gridauth"
)

func TestGeneratedCADirIsUsable(t *testing.T) {
	p, err := Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store, err := gridauth.LoadCADir(p.CertDir)
	if err != nil {
		t.Fatal(err)
	}
	_ = store
	b, _ := os.ReadFile(p.CA)
	blk, _ := pem.Decode(b)
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	h, err := SubjectHash(ca)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p.CertDir, h+".0")); err != nil {
		t.Fatalf("CA not stored under its hash: %v", err)
	}
	// Our hash must be OpenSSL's, or grid clients will not find the CA.
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl missing with CI=true")
		}
		t.Skip("openssl not installed: cannot compare hashes")
	}
	for _, f := range []string{p.CA, p.HostCert, p.UserCert} {
		out, err := exec.Command("openssl", "x509", "-in", f, "-noout", "-subject_hash").Output()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(f)
		blk, _ := pem.Decode(b)
		c, _ := x509.ParseCertificate(blk.Bytes)
		got, _ := SubjectHash(c)
		if want := strings.TrimSpace(string(out)); got != want {
			t.Errorf("%s: hash %s, openssl says %s", filepath.Base(f), got, want)
		}
	}
}
