package inventory_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives its tests (the
// inventory's writer and change-log followers): whatever starts one must
// stop it, servers and idle connections included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
