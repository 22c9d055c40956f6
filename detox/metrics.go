package detox

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/internal/promreg"
)

// Metrics are the Detox cycle series. Create them with NewMetrics and set
// Runner.Metrics; a nil *Metrics records nothing.
type Metrics struct {
	cycle     *promreg.CycleSeries
	decisions *prometheus.CounterVec // partition, decision
	bytes     *prometheus.CounterVec // partition, site: bytes decided for deletion
	lastBytes *prometheus.GaugeVec   // partition: bytes the last cycle decided to delete
}

// NewMetrics registers the Detox metrics on reg (nil: unregistered). A
// second registration of the same series reuses the first, so two
// runners in one process (serve and a test) share them.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_detox_decisions_total",
			Help: "Dataset-replica decisions of Detox cycles by outcome (keep, protect, delete, ignore)."}, []string{"partition", "decision"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_detox_deleted_bytes_total",
			Help: "Bytes Detox cycles decided to delete, per site (dry runs excluded)."}, []string{"partition", "site"}),
		lastBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dynamo_detox_last_cycle_deleted_bytes",
			Help: "Bytes the partition's last Detox cycle decided to delete (dry runs included)."}, []string{"partition"}),
	}
	r := promreg.New(reg)
	m.cycle = promreg.NewCycleSeries(r, "detox", "Detox", "planned = dry run, applied, failed",
		"Wall time of a Detox cycle: planning, recording and applying.")
	m.decisions = promreg.Add(r, m.decisions)
	m.bytes = promreg.Add(r, m.bytes)
	m.lastBytes = promreg.Add(r, m.lastBytes)
	if err := r.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// observe records one finished cycle.
func (m *Metrics) observe(res *CycleResult, status string, took time.Duration, end time.Time) {
	if m == nil || res == nil || res.Plan == nil {
		return
	}
	p := res.Plan
	m.cycle.Observe(p.Partition, status, took, end)
	for _, r := range p.Replicas {
		m.decisions.WithLabelValues(p.Partition, r.Decision.String()).Inc()
	}
	m.lastBytes.WithLabelValues(p.Partition).Set(float64(p.DeletedBytes()))
	if status != StatusApplied {
		return
	}
	for _, s := range p.Sites {
		if s.Deleted > 0 {
			m.bytes.WithLabelValues(p.Partition, s.Name).Add(float64(s.Deleted))
		}
	}
}
