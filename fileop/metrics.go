package fileop

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/internal/promreg"
)

// metrics are the daemon's Prometheus series. Links are labelled
// "SOURCE->DESTINATION" (deletions: "->SITE").
type metrics struct {
	queued   *prometheus.GaugeVec   // op, state: live subscriptions
	active   *prometheus.GaugeVec   // op: in flight
	done     *prometheus.CounterVec // op, link
	failed   *prometheus.CounterVec // op, link
	bytes    *prometheus.CounterVec // link
	linkRate *prometheus.GaugeVec   // link: bytes/s over the last metrics interval

	mu       sync.Mutex
	window   map[string]int64
	links    map[string]bool // every link that has moved bytes: idle ones read 0, not absent
	lastTick time.Time
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "dynamo", Subsystem: "fileop", Name: "queued",
			Help: "Live file subscriptions by operation and state."}, []string{"op", "state"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "dynamo", Subsystem: "fileop", Name: "active",
			Help: "File operations in flight."}, []string{"op"}),
		done: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dynamo", Subsystem: "fileop", Name: "done_total",
			Help: "Completed file operations."}, []string{"op", "link"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dynamo", Subsystem: "fileop", Name: "failed_total",
			Help: "Failed file operation attempts."}, []string{"op", "link"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dynamo", Subsystem: "fileop", Name: "transferred_bytes_total",
			Help: "Bytes transferred by successful transfers."}, []string{"link"}),
		linkRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "dynamo", Subsystem: "fileop", Name: "link_bytes_per_second",
			Help: "Transfer throughput per link over the last metrics interval."}, []string{"link"}),
		window: map[string]int64{}, links: map[string]bool{}, lastTick: time.Now(),
	}
	r := promreg.New(reg)
	m.queued = promreg.Add(r, m.queued)
	m.active = promreg.Add(r, m.active)
	m.done = promreg.Add(r, m.done)
	m.failed = promreg.Add(r, m.failed)
	m.bytes = promreg.Add(r, m.bytes)
	m.linkRate = promreg.Add(r, m.linkRate)
	if err := r.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) observe(f finished) {
	l := f.a.srcName + "->" + f.a.dstName
	op := string(f.a.sub.Op)
	if f.r.Err != nil {
		m.failed.WithLabelValues(op, l).Inc()
		return
	}
	m.done.WithLabelValues(op, l).Inc()
	if f.a.sub.Op == OpTransfer {
		m.bytes.WithLabelValues(l).Add(float64(f.r.Bytes))
		m.mu.Lock()
		m.window[l] += f.r.Bytes
		m.mu.Unlock()
	}
}

// metricsInterval is how often the gauges are refreshed: counting the
// queue is a scan, not something to do on every dispatch pass.
const metricsInterval = 15 * time.Second

// metricsLoop refreshes the gauges every metricsInterval.
func (d *Daemon) metricsLoop(ctx context.Context) {
	tick := time.NewTicker(metricsInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// Once more on the way out, so the gauges cover the work done
			// since the last tick (a drained queue reads 0, not its past).
			d.refreshGauges(context.WithoutCancel(ctx))
			return
		case <-tick.C:
		}
		d.refreshGauges(ctx)
	}
}

func (d *Daemon) refreshGauges(ctx context.Context) {
	var rows []struct {
		Op    string `db:"op"`
		State string `db:"state"`
		N     int    `db:"n"`
	}
	if err := d.db.SelectContext(ctx, &rows, "SELECT op, state, COUNT(*) AS n FROM "+TableSubscriptions+" WHERE live = 1 GROUP BY op, state"); err == nil {
		d.m.queued.Reset()
		for _, r := range rows {
			d.m.queued.WithLabelValues(r.Op, r.State).Set(float64(r.N))
		}
	}
	d.mu.Lock()
	act := map[Op]int{}
	for _, a := range d.active {
		act[a.sub.Op]++
	}
	d.mu.Unlock()
	for _, op := range []Op{OpTransfer, OpDeletion} {
		d.m.active.WithLabelValues(string(op)).Set(float64(act[op]))
	}
	m := d.m
	m.mu.Lock()
	secs := time.Since(m.lastTick).Seconds()
	m.lastTick = time.Now()
	for l := range m.window {
		m.links[l] = true
	}
	for l := range m.links {
		m.linkRate.WithLabelValues(l).Set(float64(m.window[l]) / secs)
	}
	clear(m.window)
	m.mu.Unlock()
}
