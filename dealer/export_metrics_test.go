package dealer

import "github.com/prometheus/client_golang/prometheus"

func (m *Metrics) CyclesForTest(part, status string) prometheus.Collector {
	return m.cycle.Cycles(part, status)
}

func (m *Metrics) PlacedForTest(part, site string) prometheus.Collector {
	return m.bytes.WithLabelValues(part, site)
}

func (m *Metrics) DecisionsForTest(part, outcome, reason string) prometheus.Collector {
	return m.decisions.WithLabelValues(part, outcome, reason)
}
