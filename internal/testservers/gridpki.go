package testservers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/dynamo-go/dynamo/internal/pki"
)

// The grid PKI is made once per test binary (the grid tools take seconds)
// and removed by RemoveGridPKI.
var (
	gridOnce sync.Once
	gridDir  string
	gridErr  error
)

// GridPKI returns a directory holding the test PKI of internal/pki (grid
// options: RSA keys) and the proxies the real grid tools make from it
// (scripts/mkproxies.sh: proxy.pem, and with voms-proxy-fake
// vomsproxy*.pem and vomsdir). Without openssl the test is skipped, or
// fails under CI=true. Call RemoveGridPKI from TestMain after m.Run.
func GridPKI(t testing.TB) string {
	t.Helper()
	Need(t, "openssl")
	gridOnce.Do(func() {
		if gridDir, gridErr = os.MkdirTemp("", "dynamo-grid-pki-"); gridErr != nil {
			return
		}
		gridErr = makeGridPKI(gridDir)
	})
	if gridErr != nil {
		t.Fatal(gridErr)
	}
	return gridDir
}

// RemoveGridPKI removes what GridPKI made, if anything.
func RemoveGridPKI() {
	if gridDir != "" {
		os.RemoveAll(gridDir)
	}
}

// NewGridPKI is GridPKI in a fresh directory of the test's own, for tests
// that want no credentials shared with others in the binary.
func NewGridPKI(t testing.TB) string {
	t.Helper()
	Need(t, "openssl")
	dir := t.TempDir()
	if err := makeGridPKI(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func makeGridPKI(dir string) error {
	if _, err := pki.GenerateWith(dir, pki.GridOptions); err != nil {
		return err
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "mkproxies.sh")
	if out, err := exec.Command(script, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mkproxies.sh: %v\n%s", err, out)
	}
	return nil
}
