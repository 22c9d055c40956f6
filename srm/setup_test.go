package srm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// needTool skips (or, with CI=true, fails) when a binary is missing.
func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed and CI=true (scripts/install-test-deps.sh installs it)", name)
		}
		t.Skipf("%s not installed", name)
	}
}

// The test PKI is made once per test binary (mkpki.sh takes 1-2 s) and
// removed by TestMain.
var (
	pkiOnce sync.Once
	pkiDir  string
	pkiErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pkiDir != "" {
		os.RemoveAll(pkiDir)
	}
	os.Exit(code)
}

// makePKI returns the directory scripts/mkpki.sh made for this test binary.
func makePKI(t testing.TB) string {
	t.Helper()
	needTool(t, "openssl")
	pkiOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "scripts", "mkpki.sh")
		if pkiDir, pkiErr = os.MkdirTemp("", "srm-pki-"); pkiErr != nil {
			return
		}
		if out, err := exec.Command(script, pkiDir).CombinedOutput(); err != nil {
			pkiErr = fmt.Errorf("mkpki.sh: %v\n%s", err, out)
		}
	})
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiDir
}

// testSE is a running storage element for tests.
type testSE struct {
	*Server
	PKI  string // mkpki.sh output
	Root string // physical root of area "/"
}

// startSE starts a storage element on loopback with one area "/" open to
// everyone, on a fresh SQLite database (or d when given); mutate may
// adjust the configuration before it starts.
func startSE(t testing.TB, d *db.DB, mutate func(*Config)) *testSE {
	t.Helper()
	pki := makePKI(t)
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := QuickStart(root, "127.0.0.1:0", "127.0.0.1:0",
		filepath.Join(pki, "hostcert.pem"), filepath.Join(pki, "hostkey.pem"), filepath.Join(pki, "certificates"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Engine.PickInterval = 20 * time.Millisecond
	if mutate != nil {
		mutate(cfg)
		cfg.ApplyDefaults()
	}
	if d == nil {
		d = testdb.SQLite(t)
	}
	l := logrus.New()
	l.SetOutput(testWriter{t})
	l.SetLevel(logrus.InfoLevel)
	s, err := New(cfg, d, l.WithField("component", "srm"))
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
	return &testSE{Server: s, PKI: pki, Root: root}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
