package consistency

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	runs     *prometheus.CounterVec
	files    *prometheus.GaugeVec
	bytes    *prometheus.GaugeVec
	alertG   *prometheus.GaugeVec
	duration *prometheus.GaugeVec
	lastRun  *prometheus.GaugeVec
	listed   *prometheus.GaugeVec
	rate     *prometheus.GaugeVec
}

// newMetrics registers the consistency metrics on reg (nil: unregistered).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynamo_consistency_runs_total",
			Help: "Consistency runs by site and final status (done, alert, failed, interrupted)."}, []string{"site", "status"}),
		files: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dynamo_consistency_files",
			Help: "Files per kind found by the site's last run (listed, expected, missing, orphan, size_mismatch, checksum_mismatch, temporary)."}, []string{"site", "kind"}),
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dynamo_consistency_bytes",
			Help: "Bytes per kind found by the site's last run (listed, expected, missing, orphan)."}, []string{"site", "kind"}),
		alertG: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dynamo_consistency_alert",
			Help: "1 when the site's last run tripped a safety valve and took no action."}, []string{"site"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dynamo_consistency_last_run_duration_seconds",
			Help: "Wall time of the site's last run (this process's part of it)."}, []string{"site"}),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dynamo_consistency_last_run_timestamp_seconds",
			Help: "End time of the site's last run."}, []string{"site"}),
		listed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dynamo_consistency_listing_progress",
			Help: "Progress of the site's current listing: dirs, files, pending_dirs."}, []string{"site", "kind"}),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dynamo_consistency_listing_files_per_second",
			Help: "Listing rate of the site's current listing."}, []string{"site"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.files, m.bytes, m.alertG, m.duration, m.lastRun, m.listed, m.rate} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) progress(site string, p ListProgress) {
	m.listed.WithLabelValues(site, "dirs").Set(float64(p.Dirs))
	m.listed.WithLabelValues(site, "files").Set(float64(p.Files))
	m.listed.WithLabelValues(site, "pending_dirs").Set(float64(p.Pending))
	m.rate.WithLabelValues(site).Set(p.Rate)
}

func (m *metrics) alert(site string, on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.alertG.WithLabelValues(site).Set(v)
}

func (m *metrics) observe(r *RunRecord, d time.Duration) {
	status := r.Status
	if status == StatusRunning {
		status = "interrupted" // the run ended without finishing; the next one resumes it
	}
	m.runs.WithLabelValues(r.Site, status).Inc()
	m.duration.WithLabelValues(r.Site).Set(d.Seconds())
	m.lastRun.WithLabelValues(r.Site).Set(float64(r.EndedAt))
	if r.Status != StatusDone && r.Status != StatusAlert {
		return
	}
	for k, v := range map[string]int64{"listed": r.SiteFiles, "expected": r.ExpectedFiles, "missing": r.Missing, "orphan": r.Orphans,
		"size_mismatch": r.SizeMismatch, "checksum_mismatch": r.ChecksumMismatch, "temporary": r.Temporary} {
		m.files.WithLabelValues(r.Site, k).Set(float64(v))
	}
	for k, v := range map[string]int64{"listed": r.SiteBytes, "expected": r.ExpectedBytes, "missing": r.MissingBytes, "orphan": r.OrphanBytes} {
		m.bytes.WithLabelValues(r.Site, k).Set(float64(v))
	}
}
