package fileop_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that daemons stop their goroutines when Run returns.
// Idle keep-alive connections of the HTTP drivers' transports are not
// daemon goroutines and are ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}
