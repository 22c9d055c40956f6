package registry

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives its tests (the
// registry's servers and request queues): whatever starts one must stop it,
// servers and idle connections included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
