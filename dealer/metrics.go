package dealer

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/internal/promreg"
)

// Metrics are the Dealer cycle series; set Deps.Metrics. A nil *Metrics
// records nothing.
type Metrics struct {
	cycle     *promreg.CycleSeries
	decisions *prometheus.CounterVec // partition, outcome, reason
	bytes     *prometheus.CounterVec // partition, site
}

// NewMetrics registers the Dealer metrics on reg (nil: unregistered); a
// series registered already is reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_dealer_decisions_total",
			Help: "Dealer proposals by outcome (accepted, rejected) and rejection reason."}, []string{"partition", "outcome", "reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_dealer_placed_bytes_total",
			Help: "Bytes of copies the Dealer placed, per destination (dry runs excluded)."}, []string{"partition", "site"}),
	}
	r := promreg.New(reg)
	m.cycle = promreg.NewCycleSeries(r, "dealer", "Dealer", "dry-run, applied, failed",
		"Wall time of a Dealer cycle, from its start to the end of applying it.")
	m.decisions = promreg.Add(r, m.decisions)
	m.bytes = promreg.Add(r, m.bytes)
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
	m.cycle.Observe(part, status, took, end)
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
