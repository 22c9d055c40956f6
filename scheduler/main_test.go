package scheduler

import (
	"testing"

	"go.uber.org/goleak"
)

// The scheduler starts goroutines (heartbeat loop, cron, sequences, runs);
// every test must leave none behind once its scheduler stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
