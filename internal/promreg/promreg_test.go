package promreg

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSecondInstanceSharesSeries: what a second instance observes is
// exported (it counts into the collector registered first).
func TestSecondInstanceSharesSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	mk := func() *prometheus.CounterVec {
		r := New(reg)
		c := Add(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"l"}))
		if r.Err() != nil {
			t.Fatal(r.Err())
		}
		return c
	}
	a, b := mk(), mk()
	a.WithLabelValues("v").Inc()
	b.WithLabelValues("v").Inc()
	if n := testutil.ToFloat64(a.WithLabelValues("v")); n != 2 {
		t.Fatalf("exported count %v, want 2 (both instances)", n)
	}
}

func TestConflictIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := New(reg)
	Add(r, prometheus.NewCounter(prometheus.CounterOpts{Name: "y_total", Help: "y"}))
	Add(r, prometheus.NewGauge(prometheus.GaugeOpts{Name: "y_total", Help: "other help"}))
	if r.Err() == nil {
		t.Fatal("a different collector under a taken name was accepted")
	}
}

func TestNilRegistry(t *testing.T) {
	r := New(nil)
	if c := Add(r, prometheus.NewCounter(prometheus.CounterOpts{Name: "z_total", Help: "z"})); c == nil || r.Err() != nil {
		t.Fatal("nil registry")
	}
}

func TestCycleSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := NewCycleSeries(New(reg), "x", "X", "ok, failed", "Wall time of an X cycle.")
	c.Observe("P", "ok", 2*time.Second, time.Unix(1000, 0))
	if testutil.ToFloat64(c.Cycles("P", "ok")) != 1 || testutil.ToFloat64(c.last.WithLabelValues("P")) != 1000 {
		t.Fatal("cycle not recorded")
	}
	if n, _ := testutil.GatherAndCount(reg, "dynamo_x_cycles_total", "dynamo_x_cycle_duration_seconds", "dynamo_x_last_cycle_timestamp_seconds"); n != 3 {
		t.Fatalf("%d series, want 3", n)
	}
}
