package console_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives its tests (the
// console's servers and live updates): whatever starts one must stop it,
// servers and idle connections included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
