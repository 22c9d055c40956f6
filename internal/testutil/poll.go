// Package testutil holds the helpers every package's tests share.
package testutil

import (
	"testing"
	"time"
)

// PollInterval is how often Eventually re-evaluates its condition: short
// enough that a test waits little past the moment the condition holds,
// long enough not to compete for the CPU with the code under test.
const PollInterval = 10 * time.Millisecond

// Eventually re-evaluates cond until it holds and fails t, naming what it
// waited for, if it still does not after timeout. Tests synchronise with
// the code under test through an observable condition, never a fixed
// sleep: a sleep is either too short on a loaded machine or wasted time on
// an idle one. timeout is a bound on a hang, not a performance claim, so
// it should be generous.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("still waiting after %s for %s", timeout, what)
	}
}

// Poll re-evaluates cond until it holds (true) or timeout passes (false),
// for callers that report the failure themselves or may not call
// t.Fatal (another goroutine than the test's).
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(PollInterval)
	}
	return true
}
