package console

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/inventory"
)

// PartRow is a partition of a site.
type PartRow struct {
	Name                    string
	Composite               bool
	Quota, Used, Projected  int64
	Occupancy, ProjectedOcc float64
}

// GroupRow is what one owner group holds at a site.
type GroupRow struct {
	Name     string
	Bytes    int64
	Replicas int64
}

// DatasetRow is one dataset replica at a site.
type DatasetRow struct {
	Name     string
	Group    string
	Bytes    int64
	Blocks   int
	Complete bool
	Pending  bool // some block replicas are pending deletion
}

var errNotFound = errors.New("not found")

func pathSegment(s string) string { return url.PathEscape(s) }

func (c *Console) site(g *gin.Context) {
	snap := c.src.Inventory.Snapshot()
	name := g.Param("site")
	site, ok := snap.SiteByName(name)
	if !ok {
		c.fail(g, http.StatusNotFound, errors.Join(errNotFound, errors.New("no site "+name)))
		return
	}
	f := c.Federation(g.Request.Context())
	var row SiteRow
	for _, r := range f.Sites {
		if r.Name == name {
			row = r
		}
	}
	data := struct {
		Site       SiteRow
		Host       string
		Backend    string
		Partitions []PartRow
		Groups     []GroupRow
		Datasets   []DatasetRow
		NumDS      int
		History    chart
		HistoryErr string
		Areas      []Area
	}{Site: row, Host: site.Host, Backend: site.Backend}
	for _, p := range snap.Partitions() {
		u := snap.Usage(site.ID, p.ID)
		if u.Quota == 0 && u.Physical == 0 && u.Projected == 0 {
			continue
		}
		data.Partitions = append(data.Partitions, PartRow{Name: p.Name, Composite: len(p.Subs) > 0, Quota: u.Quota, Used: u.Physical,
			Projected: u.Projected, Occupancy: frac(u.Physical, u.Quota), ProjectedOcc: frac(u.Projected, u.Quota)})
	}
	// One pass over this site's block replicas (a site page, not the
	// federation page, may cost the site's replica count).
	type dsAgg struct {
		group             inventory.GroupID
		bytes             int64
		blocks            int
		complete, pending bool
	}
	byDS := map[inventory.DatasetID]*dsAgg{}
	byGroup := map[inventory.GroupID]*GroupRow{}
	for br := range snap.BlockReplicasAtSite(site.ID) {
		b, ok := snap.Block(br.Block)
		if !ok {
			continue
		}
		a := byDS[b.Dataset]
		if a == nil {
			a = &dsAgg{group: br.Group, complete: true}
			byDS[b.Dataset] = a
		}
		a.bytes += br.Size
		a.blocks++
		a.complete = a.complete && br.Complete
		a.pending = a.pending || br.PendingDeletion
		gr := byGroup[br.Group]
		if gr == nil {
			gr = &GroupRow{Name: "(none)"}
			if grp, ok := snap.Group(br.Group); ok {
				gr.Name = grp.Name
			}
			byGroup[br.Group] = gr
		}
		gr.Bytes += br.Size
		gr.Replicas++
	}
	for _, gr := range byGroup {
		data.Groups = append(data.Groups, *gr)
	}
	slices.SortFunc(data.Groups, func(a, b GroupRow) int { return cmp.Compare(b.Bytes, a.Bytes) })
	type kv struct {
		id inventory.DatasetID
		a  *dsAgg
	}
	all := make([]kv, 0, len(byDS))
	for id, a := range byDS {
		all = append(all, kv{id, a})
	}
	slices.SortFunc(all, func(x, y kv) int { return cmp.Or(cmp.Compare(y.a.bytes, x.a.bytes), cmp.Compare(x.id, y.id)) })
	data.NumDS = len(all)
	for _, e := range all[:min(len(all), 25)] {
		d, _ := snap.Dataset(e.id)
		gname := "(none)"
		if grp, ok := snap.Group(e.a.group); ok {
			gname = grp.Name
		}
		data.Datasets = append(data.Datasets, DatasetRow{Name: d.Name, Group: gname, Bytes: e.a.bytes, Blocks: e.a.blocks,
			Complete: e.a.complete, Pending: e.a.pending})
	}
	if c.src.Detox != nil {
		hist, err := c.src.Detox.SiteHistory(g.Request.Context(), name, 200)
		if err != nil {
			c.log.WithError(err).Warn("console: detox site history")
			data.HistoryErr = "the Detox history could not be read"
		}
		data.History = occupancyHistory(name, hist, row.Watermarks)
	} else {
		data.HistoryErr = "Detox is not running"
	}
	if c.src.StorageAreas != nil {
		data.Areas = c.src.StorageAreas.StorageAreas(name)
	}
	c.render(g, http.StatusOK, "site", name, data)
}

// occupancyHistory charts a site's occupancy before and after each Detox
// cycle, with the watermarks as reference lines.
func occupancyHistory(site string, hist []detox.SiteCycle, wms []detox.Watermark) chart {
	before := series{Name: "before cycle", Class: "s1"}
	after := series{Name: "after cycle", Class: "s0"}
	for _, h := range hist {
		t := time.Unix(h.Started, 0)
		before.Points = append(before.Points, point{t, 100 * frac(h.Before, h.Quota)})
		after.Points = append(after.Points, point{t, 100 * frac(h.After, h.Quota)})
	}
	refs := map[string]float64{}
	for _, w := range wms {
		if w.High > 0 {
			refs["high"] = 100 * w.High
		}
		if w.Low > 0 {
			refs["low"] = 100 * w.Low
		}
	}
	return timeChart("Occupancy of "+site+" at each Detox cycle (% of the partition quota)", []series{before, after},
		func(v float64) string { return formatFloat(v, 0) + "%" }, refs)
}
