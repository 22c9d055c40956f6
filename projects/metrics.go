package projects

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	started, ended, delivered, vanished prometheus.Counter
	reported                            *prometheus.CounterVec
}

// newMetrics registers the collectors on reg (none when reg is nil).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		started:   prometheus.NewCounter(prometheus.CounterOpts{Name: "dynamo_projects_started_total", Help: "Projects started."}),
		ended:     prometheus.NewCounter(prometheus.CounterOpts{Name: "dynamo_projects_ended_total", Help: "Projects ended."}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "dynamo_projects_files_delivered_total", Help: "Files handed to consumer processes."}),
		vanished: prometheus.NewCounter(prometheus.CounterOpts{Name: "dynamo_projects_files_vanished_total",
			Help: "Files found gone from volatile storage (and unregistered)."}),
		reported: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_projects_files_reported_total",
			Help: "Files reported by consumers, by status."}, []string{"status"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.started, m.ended, m.delivered, m.vanished, m.reported} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("projects metrics: %w", err)
		}
	}
	return m, nil
}
