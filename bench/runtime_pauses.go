package bench

import (
	"math"
	"runtime/metrics"
)

// RESTRuntime is what the Go runtime reports about the process over the
// rest step. Its figures tell apart the causes of a process-wide stall
// that every route sees alike: a GC stop-the-world that waited for a
// goroutine to reach a preemption point (GCStoppingMax), a long GC pause
// in total (GCPauseMax), requests made to assist the GC's marking
// (GCAssistCPU), and goroutines left runnable without a P or without a
// CPU (SchedLatency*: the wait from runnable to running, which includes
// the time the OS did not run the process's threads).
//
// Maxima come from the runtime's histograms, so they are the upper bound
// of the highest non-empty bucket (buckets are a few percent wide).
type RESTRuntime struct {
	GCCycles          int     `json:"gc_cycles"`
	GCStoppingMaxMS   float64 `json:"gc_stopping_max_ms"`
	GCPauseMaxMS      float64 `json:"gc_pause_max_ms"`
	GCAssistCPU       float64 `json:"gc_assist_cpu_s"`
	SchedLatencyP99MS float64 `json:"sched_latency_p99_ms"`
	SchedLatencyMaxMS float64 `json:"sched_latency_max_ms"`
}

// runtimeCounters is a snapshot of the runtime metrics RESTRuntime is
// made of. The runtime's figures are cumulative since the process
// started, so a step's figures are the difference of two snapshots.
type runtimeCounters struct {
	gcCycles  uint64
	assistCPU float64
	stopping  *metrics.Float64Histogram
	pauses    *metrics.Float64Histogram
	latencies *metrics.Float64Histogram
}

func readRuntimeCounters() runtimeCounters {
	s := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/cpu/classes/gc/mark/assist:cpu-seconds"},
		{Name: "/sched/pauses/stopping/gc:seconds"},
		{Name: "/sched/pauses/total/gc:seconds"},
		{Name: "/sched/latencies:seconds"},
	}
	metrics.Read(s)
	hist := func(v metrics.Value) *metrics.Float64Histogram {
		if v.Kind() != metrics.KindFloat64Histogram {
			return &metrics.Float64Histogram{}
		}
		h := v.Float64Histogram()
		// The runtime may reuse the counts on the next Read.
		return &metrics.Float64Histogram{Counts: append([]uint64(nil), h.Counts...), Buckets: h.Buckets}
	}
	var c runtimeCounters
	if s[0].Value.Kind() == metrics.KindUint64 {
		c.gcCycles = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindFloat64 {
		c.assistCPU = s[1].Value.Float64()
	}
	c.stopping, c.pauses, c.latencies = hist(s[2].Value), hist(s[3].Value), hist(s[4].Value)
	return c
}

// runtimeBetween is what happened in the process between two snapshots.
func runtimeBetween(before, after runtimeCounters) RESTRuntime {
	lat := histDiff(before.latencies, after.latencies)
	return RESTRuntime{
		GCCycles:          int(after.gcCycles - before.gcCycles),
		GCStoppingMaxMS:   histQuantileMS(histDiff(before.stopping, after.stopping), 1),
		GCPauseMaxMS:      histQuantileMS(histDiff(before.pauses, after.pauses), 1),
		GCAssistCPU:       math.Round((after.assistCPU-before.assistCPU)*1000) / 1000,
		SchedLatencyP99MS: histQuantileMS(lat, 0.99),
		SchedLatencyMaxMS: histQuantileMS(lat, 1),
	}
}

// histDiff returns after's counts minus before's (same buckets).
func histDiff(before, after *metrics.Float64Histogram) *metrics.Float64Histogram {
	d := &metrics.Float64Histogram{Counts: make([]uint64, len(after.Counts)), Buckets: after.Buckets}
	for i := range after.Counts {
		d.Counts[i] = after.Counts[i]
		if before != nil && i < len(before.Counts) {
			d.Counts[i] -= before.Counts[i]
		}
	}
	return d
}

// histQuantileMS returns, in milliseconds, the upper bound of the bucket
// holding quantile q of h (q = 1: the highest non-empty bucket), 0 for an
// empty histogram.
func histQuantileMS(h *metrics.Float64Histogram, q float64) float64 {
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			hi := h.Buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = h.Buckets[i]
			}
			return hi * 1000
		}
	}
	return 0
}
