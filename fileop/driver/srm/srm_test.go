package srm_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/fileop/driver/drivertest"
	_ "github.com/dynamo-go/dynamo/fileop/driver/srm"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testservers"
	srmse "github.com/dynamo-go/dynamo/srm"
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// SE is an embedded SRM storage element running in this test process.
type SE struct {
	URL  string // srm://localhost:PORT/
	Root string // the physical directory behind "/"
	PKI  *testservers.PKI
}

// StartSE starts the embedded SE on loopback with one area "/" open to
// every client the test CA trusts, on a fresh SQLite database.
func StartSE(t testing.TB) *SE {
	t.Helper()
	pki := testservers.NewPKI(t)
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := srmse.QuickStart(root, "127.0.0.1:0", "127.0.0.1:0", pki.HostCert, pki.HostKey, pki.CertDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Engine.PickInterval = 10 * time.Millisecond
	l := logrus.New()
	l.SetOutput(tWriter{t})
	l.SetLevel(logrus.WarnLevel)
	s, err := srmse.New(cfg, testdb.SQLite(t), l.WithField("component", "srm"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("SE did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("SE Run: %v", err)
		}
	})
	a := s.SRMAddr().String()
	return &SE{URL: "srm://localhost:" + a[strings.LastIndexByte(a, ':')+1:] + "/", Root: root, PKI: pki}
}

func TestConformanceEmbeddedSE(t *testing.T) {
	se := StartSE(t)
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		d, err := driver.Open(context.Background(), se.URL, driver.Options{Proxy: se.PKI.UserCred, CACertDir: se.PKI.CertDir})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, drivertest.Caps{
		Checksum: true, AtomicPut: true, ListEntries: 1200,
		Populate: func(t *testing.T, dir string, n int) {
			for i := 0; i < n; i++ {
				if err := os.WriteFile(filepath.Join(se.Root, dir, "f"+pad(i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
}

func pad(i int) string {
	s := "0000" + itoa(i)
	return s[len(s)-5:]
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestOpenNeedsCredentialAndPort(t *testing.T) {
	for _, u := range []string{"srm://localhost/x", "srm://localhost:8443/x?SFN=/y"} {
		if _, err := driver.Open(context.Background(), u, driver.Options{}); err == nil {
			t.Errorf("%s opened", u)
		}
	}
	_, err := driver.Open(context.Background(), "srm://localhost:8443/x", driver.Options{})
	if err == nil || !strings.Contains(err.Error(), "credential") {
		t.Errorf("no credential: %v", err)
	}
}
