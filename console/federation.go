package console

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/inventory"
)

// SiteRow is one site on the federation page.
type SiteRow struct {
	Name, Status, StorageType string
	Quota, Used, Projected    int64 // over the site's partitions (super-partitions not counted twice)
	PendingDeletion           int64 // bytes pending deletion
	TransfersQueued           int64 // live transfer subscriptions to the site
	TransferBytes             int64
	DeletionsQueued           int64 // live deletion subscriptions at the site
	// Watermarks of the Detox partitions whose policy targets the site.
	Watermarks []detox.Watermark
}

// Occupancy is the fraction of quota used (0 without a quota).
func (r SiteRow) Occupancy() float64 { return frac(r.Used, r.Quota) }

// ProjectedOccupancy is the fraction of quota used once transfers land
// and deletions finish.
func (r SiteRow) ProjectedOccupancy() float64 { return frac(r.Projected, r.Quota) }

// OverHigh reports whether the site is above a Detox high watermark.
func (r SiteRow) OverHigh() bool {
	for _, w := range r.Watermarks {
		if w.High > 0 && frac(w.Used, w.Quota) > w.High {
			return true
		}
	}
	return false
}

func frac(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Federation is the federation page's model.
type Federation struct {
	Seq      uint64
	Sites    []SiteRow
	Totals   SiteRow
	Counts   inventory.Counts
	Problems []string // sources that could not be read (the page still renders)
}

// Federation builds the federation model. It costs O(sites x
// partitions) from the inventory's per-site counters plus two cached
// aggregates (queue counts, watermarks); it never walks replicas.
func (c *Console) Federation(ctx context.Context) Federation {
	snap := c.src.Inventory.Snapshot()
	parts := snap.Partitions()
	var f Federation
	f.Seq = snap.Seq()
	queue, err := c.cachedQueue(ctx)
	if err != nil {
		f.Problems = append(f.Problems, "transfer queue unavailable")
	}
	wms, err := c.cachedWatermarks(snap)
	if err != nil {
		f.Problems = append(f.Problems, "Detox watermarks unavailable: "+err.Error())
	}
	type pend struct{ tn, tb, dn int64 }
	pending := map[int32]*pend{}
	for _, q := range queue {
		p := pending[q.Site]
		if p == nil {
			p = &pend{}
			pending[q.Site] = p
		}
		if q.Op == fileop.OpTransfer {
			p.tn += q.Count
			p.tb += q.Bytes
		} else {
			p.dn += q.Count
		}
	}
	bySite := map[string][]detox.Watermark{}
	for _, w := range wms {
		bySite[w.Site] = append(bySite[w.Site], w)
	}
	for _, s := range snap.Sites() {
		r := SiteRow{Name: s.Name, Status: s.Status.String(), StorageType: s.StorageType.String(),
			PendingDeletion: snap.PendingDeletion(s.ID), Watermarks: bySite[s.Name]}
		for _, p := range parts {
			if len(p.Subs) > 0 {
				continue
			}
			u := snap.Usage(s.ID, p.ID)
			r.Quota += u.Quota
			r.Used += u.Physical
			r.Projected += u.Projected
		}
		if p := pending[int32(s.ID)]; p != nil {
			r.TransfersQueued, r.TransferBytes, r.DeletionsQueued = p.tn, p.tb, p.dn
		}
		f.Totals.Quota += r.Quota
		f.Totals.Used += r.Used
		f.Totals.Projected += r.Projected
		f.Totals.PendingDeletion += r.PendingDeletion
		f.Totals.TransfersQueued += r.TransfersQueued
		f.Totals.TransferBytes += r.TransferBytes
		f.Totals.DeletionsQueued += r.DeletionsQueued
		f.Sites = append(f.Sites, r)
	}
	sort.Slice(f.Sites, func(i, j int) bool { return f.Sites[i].Name < f.Sites[j].Name })
	return f
}

func (c *Console) cachedQueue(ctx context.Context) ([]fileop.LinkRow, error) {
	if c.src.Transfers == nil {
		return nil, nil
	}
	return refreshing(c, &c.queue, 0, func() ([]fileop.LinkRow, error) {
		return c.src.Transfers.Queue(context.WithoutCancel(ctx))
	})
}

// cachedWatermarks re-evaluates the policies when the inventory changed
// and the last evaluation is older than refreshEvery: On lines may
// depend on occupancy, and policy files are read from disk.
func (c *Console) cachedWatermarks(snap *inventory.Snapshot) ([]detox.Watermark, error) {
	if c.src.Watermarks == nil {
		return nil, nil
	}
	return refreshing(c, &c.watermark, snap.Seq(), func() ([]detox.Watermark, error) {
		return c.src.Watermarks.Watermarks(c.src.Inventory.Snapshot(), c.now())
	})
}

// refreshing returns the cached value and, when it is older than
// refreshEvery (and, with seq > 0, the inventory changed since), starts
// one background refresh: a page never waits for a database scan or a
// policy parse, except the very first one.
func refreshing[T any](c *Console, e *cached[T], seq uint64, load func() (T, error)) (T, error) {
	c.mu.Lock()
	now := c.now()
	if e.at.IsZero() {
		c.mu.Unlock()
		v, err := load()
		c.mu.Lock()
		*e = cached[T]{at: now, seq: seq, val: v, err: err}
		c.mu.Unlock()
		return v, err
	}
	stale := now.Sub(e.at) >= refreshEvery && (seq == 0 || seq != e.seq)
	if stale && !e.loading {
		e.loading = true
		go func() {
			v, err := load()
			c.mu.Lock()
			*e = cached[T]{at: c.now(), seq: seq, val: v, err: err}
			c.mu.Unlock()
		}()
	}
	v, err := e.val, e.err
	c.mu.Unlock()
	return v, err
}

// FederationChart is the occupancy chart of the federation page.
func FederationChart(f Federation) chart {
	bars := make([]bar, 0, len(f.Sites))
	for _, s := range f.Sites {
		b := bar{Label: s.Name, Href: "/sites/" + pathSegment(s.Name), Value: s.Occupancy(), Projected: s.ProjectedOccupancy(), Alert: s.OverHigh()}
		for _, w := range s.Watermarks {
			if w.High > 0 || w.Low > 0 {
				b.High, b.Low = w.High, w.Low
				b.Value = frac(w.Used, w.Quota)
				break
			}
		}
		bars = append(bars, b)
	}
	return occupancyBars("Occupancy of each site's quota (bar: used; outline: projected; ticks: Detox high and low watermarks)", bars)
}

func (c *Console) federation(g *gin.Context) {
	start := time.Now()
	f := c.Federation(g.Request.Context())
	data := struct {
		Federation
		Chart   chart
		Elapsed time.Duration
	}{f, FederationChart(f), 0}
	data.Elapsed = time.Since(start)
	c.render(g, http.StatusOK, "federation", "Federation", data)
}
