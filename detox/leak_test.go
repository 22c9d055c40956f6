package detox

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives its tests (the Detox
// cycles): whatever starts one must stop it, servers and idle connections
// included.
//
// Every cycle the tests plan checks the candidate order it keeps between
// iterations against a full sort (verifyOrder).
func TestMain(m *testing.M) {
	verifyOrder = true
	goleak.VerifyTestMain(m)
}
