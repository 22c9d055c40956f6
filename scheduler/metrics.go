package scheduler

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/internal/promreg"
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
	r := promreg.New(reg)
	m.duration = promreg.Add(r, m.duration)
	m.lastSuccess = promreg.Add(r, m.lastSuccess)
	m.runs = promreg.Add(r, m.runs)
	m.updates = promreg.Add(r, m.updates)
	m.seqFailures = promreg.Add(r, m.seqFailures)
	m.leaseHeld = promreg.Add(r, m.leaseHeld)
	m.inFlight = promreg.Add(r, m.inFlight)
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("scheduler metrics: %w", err)
	}
	return m, nil
}
