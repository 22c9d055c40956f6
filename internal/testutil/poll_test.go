package testutil

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestPollWaitsForTheCondition(t *testing.T) {
	var n atomic.Int32
	if !Poll(time.Minute, func() bool { return n.Add(1) == 3 }) {
		t.Fatal("Poll gave up on a condition that holds on the third call")
	}
	if n.Load() != 3 {
		t.Errorf("cond evaluated %d times, want 3: Poll must stop once it holds", n.Load())
	}
}

func TestPollGivesUp(t *testing.T) {
	if Poll(3*PollInterval, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never holds as met")
	}
}

// recorder is a testing.TB that records Fatalf instead of stopping.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestEventuallyFailsTheTest(t *testing.T) {
	r := &recorder{TB: t}
	Eventually(r, 3*PollInterval, "nothing", func() bool { return false })
	if !r.failed {
		t.Error("Eventually did not fail a test whose condition never held")
	}
	r = &recorder{TB: t}
	Eventually(r, time.Minute, "something", func() bool { return true })
	if r.failed {
		t.Error("Eventually failed a test whose condition held")
	}
}
