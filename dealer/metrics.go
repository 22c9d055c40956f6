package dealer

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/internal/promreg"
)

// Metrics are the Dealer cycle series; set Deps.Metrics. A nil *Metrics
// records nothing.
type Metrics struct {
	cycles    *prometheus.CounterVec   // partition, status
	duration  *prometheus.HistogramVec // partition
	decisions *prometheus.CounterVec   // partition, outcome, reason
	bytes     *prometheus.CounterVec   // partition, site
	last      *prometheus.GaugeVec     // partition
}

// NewMetrics registers the Dealer metrics on reg (nil: unregistered); a
// series registered already is reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		cycles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_dealer_cycles_total",
			Help: "Dealer cycles by partition and outcome (dry-run, applied, failed)."}, []string{"partition", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dynamo_dealer_cycle_duration_seconds",
			Help:    "Wall time of a Dealer cycle, from its start to the end of applying it.",
			Buckets: []float64{.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}}, []string{"partition"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_dealer_decisions_total",
			Help: "Dealer proposals by outcome (accepted, rejected) and rejection reason."}, []string{"partition", "outcome", "reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_dealer_placed_bytes_total",
			Help: "Bytes of copies the Dealer placed, per destination (dry runs excluded)."}, []string{"partition", "site"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dynamo_dealer_last_cycle_timestamp_seconds",
			Help: "End time of the partition's last Dealer cycle."}, []string{"partition"}),
	}
	r := promreg.New(reg)
	m.cycles = promreg.Add(r, m.cycles)
	m.duration = promreg.Add(r, m.duration)
	m.decisions = promreg.Add(r, m.decisions)
	m.bytes = promreg.Add(r, m.bytes)
	m.last = promreg.Add(r, m.last)
	if err := r.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) observe(plan *Plan, status string, took time.Duration, end time.Time) {
	if m == nil || plan == nil {
		return
	}
	part := plan.Partition
	m.cycles.WithLabelValues(part, status).Inc()
	m.duration.WithLabelValues(part).Observe(took.Seconds())
	m.last.WithLabelValues(part).Set(float64(end.Unix()))
	for _, d := range plan.Decisions {
		if d.Accepted {
			m.decisions.WithLabelValues(part, "accepted", "").Inc()
		} else {
			m.decisions.WithLabelValues(part, "rejected", string(d.Reason)).Inc()
		}
	}
	if status != CycleApplied {
		return
	}
	for _, c := range plan.Copies {
		// Decisions[i] decides Proposals[i].
		if i := c.Proposal; i >= 0 && i < len(plan.Decisions) && plan.Decisions[i].Accepted && plan.Decisions[i].Bytes > 0 {
			m.bytes.WithLabelValues(part, c.SiteName).Add(float64(plan.Decisions[i].Bytes))
		}
	}
}
