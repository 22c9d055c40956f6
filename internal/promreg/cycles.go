package promreg

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CycleSeries are the series of a planner that runs in cycles per
// partition (Detox, the Dealer): dynamo_<name>_cycles_total{partition,
// status}, dynamo_<name>_cycle_duration_seconds{partition} and
// dynamo_<name>_last_cycle_timestamp_seconds{partition}.
type CycleSeries struct {
	cycles   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	last     *prometheus.GaugeVec
}

// NewCycleSeries registers the cycle series of component name (as in the
// series names), called title in help texts; outcomes lists the status
// values and durationHelp says what a cycle's duration covers.
func NewCycleSeries(r *Registrar, name, title, outcomes, durationHelp string) *CycleSeries {
	return &CycleSeries{
		cycles: Add(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_" + name + "_cycles_total",
			Help: title + " cycles by partition and outcome (" + outcomes + ")."}, []string{"partition", "status"})),
		duration: Add(r, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dynamo_" + name + "_cycle_duration_seconds",
			Help:    durationHelp,
			Buckets: []float64{.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}}, []string{"partition"})),
		last: Add(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dynamo_" + name + "_last_cycle_timestamp_seconds",
			Help: "End time of the partition's last " + title + " cycle."}, []string{"partition"})),
	}
}

// Observe records one finished cycle of partition.
func (c *CycleSeries) Observe(partition, status string, took time.Duration, end time.Time) {
	c.cycles.WithLabelValues(partition, status).Inc()
	c.duration.WithLabelValues(partition).Observe(took.Seconds())
	c.last.WithLabelValues(partition).Set(float64(end.Unix()))
}

// Cycles is the counter of partition's cycles that ended with status.
func (c *CycleSeries) Cycles(partition, status string) prometheus.Counter {
	return c.cycles.WithLabelValues(partition, status)
}
