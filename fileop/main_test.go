package fileop_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that daemons stop their goroutines when Run returns, and
// that every test closes the idle connections its HTTP clients keep.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
