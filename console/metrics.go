package console

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamo-go/dynamo/fileop"
)

// The federation page's numbers as Prometheus series, computed at scrape
// time from the same sources and caches as the page (per-site counters of
// the inventory, the cached queue and watermarks), so a scrape costs what
// a page load costs and the two never disagree.

var (
	descQuota = prometheus.NewDesc("dynamo_site_quota_bytes",
		"Quota of a site partition (a super-partition's is the sum of its subs').", []string{"site", "partition"}, nil)
	descUsed = prometheus.NewDesc("dynamo_site_used_bytes",
		"Bytes on disk at a site in a partition (replicas pending deletion included until removed).", []string{"site", "partition"}, nil)
	descProjected = prometheus.NewDesc("dynamo_site_projected_bytes",
		"Bytes a site partition will hold once queued transfers land and pending deletions finish.", []string{"site", "partition"}, nil)
	descPending = prometheus.NewDesc("dynamo_site_pending_deletion_bytes",
		"Bytes at a site that are pending deletion.", []string{"site"}, nil)
	descReady = prometheus.NewDesc("dynamo_site_ready",
		"1 when the site's status is ready, else 0.", []string{"site", "status"}, nil)
	descQueued = prometheus.NewDesc("dynamo_site_queued_files",
		"Live file subscriptions to (transfers) or at (deletions) a site.", []string{"site", "op"}, nil)
	descWatermark = prometheus.NewDesc("dynamo_detox_watermark",
		"Occupancy fraction of a Detox policy's When (level=high) and Until (level=low) lines at a site it targets.", []string{"partition", "site", "level"}, nil)
	descOccupancy = prometheus.NewDesc("dynamo_detox_occupancy",
		"Used fraction of a site's quota in a Detox partition, as its policy sees it.", []string{"partition", "site"}, nil)
	descTriggered = prometheus.NewDesc("dynamo_detox_triggered",
		"1 when a Detox cycle run now would start deleting at the site (its When line holds).", []string{"partition", "site"}, nil)
)

type collector struct{ c *Console }

// Collector returns the per-site and per-partition gauges (quota, used,
// projected, pending deletion, queue, Detox watermarks) for /metrics.
func (c *Console) Collector() prometheus.Collector { return collector{c} }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQuota, descUsed, descProjected, descPending, descReady, descQueued, descWatermark, descOccupancy, descTriggered} {
		ch <- d
	}
}

func (m collector) Collect(ch chan<- prometheus.Metric) {
	c := m.c
	snap := c.src.Inventory.Snapshot()
	parts := snap.Partitions()
	names := map[int32]string{}
	for _, s := range snap.Sites() {
		names[int32(s.ID)] = s.Name
		for _, p := range parts {
			u := snap.Usage(s.ID, p.ID)
			if u.Quota == 0 && u.Physical == 0 && u.Projected == 0 {
				continue
			}
			ch <- prometheus.MustNewConstMetric(descQuota, prometheus.GaugeValue, float64(u.Quota), s.Name, p.Name)
			ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, float64(u.Physical), s.Name, p.Name)
			ch <- prometheus.MustNewConstMetric(descProjected, prometheus.GaugeValue, float64(u.Projected), s.Name, p.Name)
		}
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(snap.PendingDeletion(s.ID)), s.Name)
		ready := 0.0
		if s.Status.String() == "ready" {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, ready, s.Name, s.Status.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if queue, err := c.cachedQueue(ctx); err == nil && c.src.Transfers != nil {
		type key struct {
			site int32
			op   fileop.Op
		}
		sum := map[key]int64{}
		for _, q := range queue {
			sum[key{q.Site, q.Op}] += q.Count
		}
		// Every site and op, 0 included: an alert on a queue needs the series.
		for id, name := range names {
			for _, op := range []fileop.Op{fileop.OpTransfer, fileop.OpDeletion} {
				ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(sum[key{id, op}]), name, string(op))
			}
		}
	}
	if wms, err := c.cachedWatermarks(snap); err == nil {
		for _, w := range wms {
			if w.High > 0 {
				ch <- prometheus.MustNewConstMetric(descWatermark, prometheus.GaugeValue, w.High, w.Partition, w.Site, "high")
			}
			if w.Low > 0 {
				ch <- prometheus.MustNewConstMetric(descWatermark, prometheus.GaugeValue, w.Low, w.Partition, w.Site, "low")
			}
			ch <- prometheus.MustNewConstMetric(descOccupancy, prometheus.GaugeValue, frac(w.Used, w.Quota), w.Partition, w.Site)
			t := 0.0
			if w.Triggered {
				t = 1
			}
			ch <- prometheus.MustNewConstMetric(descTriggered, prometheus.GaugeValue, t, w.Partition, w.Site)
		}
	}
}
