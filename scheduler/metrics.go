package scheduler

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the scheduler's Prometheus series.
type metrics struct {
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
	runs        *prometheus.CounterVec
	updates     *prometheus.CounterVec
	seqFailures *prometheus.CounterVec
	leaseHeld   prometheus.Gauge
	inFlight    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "dynamo", Subsystem: "scheduler", Name: "run_duration_seconds",
			Help:    "Wall time of application runs, by application and final status.",
			Buckets: []float64{0.01, 0.1, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600},
		}, []string{"app", "status"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "dynamo", Subsystem: "scheduler", Name: "last_success_timestamp_seconds",
			Help: "Unix time at which the application last finished successfully.",
		}, []string{"app"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dynamo", Subsystem: "scheduler", Name: "runs_total",
			Help: "Application runs by final status (skipped: the application was paused).",
		}, []string{"app", "status"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dynamo", Subsystem: "scheduler", Name: "updates_applied_total",
			Help: "Inventory updates applied from writer plans.",
		}, []string{"app"}),
		seqFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dynamo", Subsystem: "scheduler", Name: "sequence_step_failures_total",
			Help: "Failed sequence steps (the event Dynamo e-mailed about).",
		}, []string{"sequence"}),
		leaseHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "dynamo", Subsystem: "scheduler", Name: "writer_lease_held",
			Help: "1 while this server holds the inventory writer lease and schedules applications.",
		}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "dynamo", Subsystem: "scheduler", Name: "runs_in_flight",
			Help: "Runs executing now, by kind (reader, writer).",
		}, []string{"kind"}),
	}
	var err error
	m.duration = register(reg, m.duration, &err)
	m.lastSuccess = register(reg, m.lastSuccess, &err)
	m.runs = register(reg, m.runs, &err)
	m.updates = register(reg, m.updates, &err)
	m.seqFailures = register(reg, m.seqFailures, &err)
	m.leaseHeld = register(reg, m.leaseHeld, &err)
	m.inFlight = register(reg, m.inFlight, &err)
	if err != nil {
		return nil, fmt.Errorf("scheduler metrics: %w", err)
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same description (a second scheduler in one process shares series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}
