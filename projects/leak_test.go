package projects

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/dynamo-go/dynamo/internal/setest"
)

// TestMain fails the package if a goroutine outlives its tests (the manager,
// its stager and the storage element): whatever starts one must stop it,
// servers and idle connections included. It then removes the test PKI
// (internal/setest).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		setest.Cleanup()
		os.Exit(code)
	}))
}
