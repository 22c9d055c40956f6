package detox

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives its tests (the Detox
// cycles): whatever starts one must stop it, servers and idle connections
// included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
