package bench

import (
	"math"
	"runtime"
	"runtime/metrics"
	"slices"
	"testing"
)

func TestHistQuantileAndDiff(t *testing.T) {
	buckets := []float64{0, 0.001, 0.01, 0.1, math.Inf(1)}
	before := &metrics.Float64Histogram{Counts: []uint64{5, 1, 0, 0}, Buckets: buckets}
	after := &metrics.Float64Histogram{Counts: []uint64{104, 1, 0, 1}, Buckets: buckets}
	d := histDiff(before, after)
	if want := []uint64{99, 0, 0, 1}; !slices.Equal(d.Counts, want) {
		t.Fatalf("diff counts %v, want %v", d.Counts, want)
	}
	// 99 of 100 in the first bucket: p99 is its upper bound, 1 ms.
	if got := histQuantileMS(d, 0.99); got != 1 {
		t.Errorf("p99 = %v ms, want 1", got)
	}
	// The maximum is in the open last bucket: its lower bound, 100 ms.
	if got := histQuantileMS(d, 1); got != 100 {
		t.Errorf("max = %v ms, want 100", got)
	}
	if got := histQuantileMS(histDiff(after, after), 1); got != 0 {
		t.Errorf("empty histogram: %v, want 0", got)
	}
}

// A forced GC between two snapshots is counted, and its stop-the-world
// pause shows in the pause histogram.
func TestRuntimeBetweenSeesGC(t *testing.T) {
	before := readRuntimeCounters()
	runtime.GC()
	rt := runtimeBetween(before, readRuntimeCounters())
	if rt.GCCycles < 1 {
		t.Fatalf("GC cycles %d after runtime.GC, want >= 1", rt.GCCycles)
	}
	if rt.GCPauseMaxMS <= 0 {
		t.Errorf("GC pause max %v ms, want > 0", rt.GCPauseMaxMS)
	}
}
