package srm

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testservers"
)

// TestMain fails the package if a goroutine outlives its tests (the
// engine's workers, recalls, servers, clients' idle connections), then
// removes the test PKI.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		testservers.RemoveGridPKI()
		os.Exit(code)
	}))
}

// makePKI returns the grid PKI directory of this test binary.
func makePKI(t testing.TB) string { return testservers.GridPKI(t) }

// testSE is a running storage element for tests.
type testSE struct {
	*Server
	PKI  string // testservers.GridPKI
	Root string // physical root of area "/"
}

// startSE starts a storage element on loopback with one area "/" open to
// everyone, on a fresh SQLite database (or d when given); mutate may
// adjust the configuration before it starts. It is internal/setest's
// Start for this package's own tests, which cannot import setest (setest
// imports srm).
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
	l.SetOutput(testservers.LogWriter{T: t})
	l.SetLevel(logrus.InfoLevel)
	s, err := New(cfg, d, l.WithField("component", "srm"))
	if err != nil {
		t.Fatal(err)
	}
	testservers.Serve(t, s)
	return &testSE{Server: s, PKI: pki, Root: root}
}
