package console

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

// itemProgress is one item of a request at one site.
type itemProgress struct {
	Item, Site string
	Status     string // the request action's status, when one was recorded
	Reason     string
	Have, Want int64 // bytes at the site, bytes of the item
	Known      bool  // the item is a dataset or block of the inventory
}

// Fraction is how far the item is: for a copy, the part of the item at
// the site; for a deletion, the part already gone.
func (p itemProgress) fraction(deletion bool) float64 {
	if p.Want <= 0 {
		return 0
	}
	f := frac(p.Have, p.Want)
	if deletion {
		return 1 - f
	}
	return f
}

type requestRow struct {
	registry.Request
	Items []itemProgress
	Done  float64 // over the items
}

func (c *Console) requests(g *gin.Context) {
	ctx := g.Request.Context()
	snap := c.src.Inventory.Snapshot()
	data := struct {
		Copies    []requestRow
		Deletions []requestRow
	}{}
	for _, k := range []registry.Kind{registry.KindCopy, registry.KindDeletion} {
		newest, err := c.src.Requests.ListRequests(ctx, registry.RequestFilter{Kind: k, Newest: true, Limit: 100})
		if err != nil {
			c.sourceErr(g, err)
			return
		}
		rows := make([]requestRow, 0, len(newest))
		for _, q := range newest {
			rows = append(rows, requestProgress(snap, q))
		}
		if k == registry.KindCopy {
			data.Copies = rows
		} else {
			data.Deletions = rows
		}
	}
	c.render(g, http.StatusOK, "requests", "Requests", data)
}

// requestProgress measures each (item, site) of a request in the
// inventory: bytes of the item present at the site.
func requestProgress(snap *inventory.Snapshot, q registry.Request) requestRow {
	r := requestRow{Request: q}
	actions := map[[2]string]registry.Action{}
	for _, a := range q.Actions {
		actions[[2]string{a.Item, a.Site}] = a
	}
	var have, want int64
	for _, item := range q.Items {
		for _, site := range q.Sites {
			p := itemProgress{Item: item, Site: site}
			if a, ok := actions[[2]string{item, site}]; ok {
				p.Status, p.Reason = a.Status, a.Reason
			}
			p.Have, p.Want, p.Known = itemBytes(snap, item, site)
			have += p.Have
			want += p.Want
			r.Items = append(r.Items, p)
		}
	}
	r.Done = frac(have, want)
	if q.Kind == registry.KindDeletion && want > 0 {
		r.Done = 1 - r.Done
	}
	return r
}

// itemBytes returns the bytes of a dataset or block ("ds#block") present
// at site and its full size. Globs and unknown names are not measured.
func itemBytes(snap *inventory.Snapshot, item, siteName string) (have, want int64, known bool) {
	site, ok := snap.SiteByName(siteName)
	if strings.ContainsAny(item, "*?[") {
		return 0, 0, false
	}
	count := func(b inventory.Block) {
		want += b.Size
		if ok {
			if br, found := snap.BlockReplica(b.ID, site.ID); found {
				have += br.Size
			}
		}
	}
	if strings.Contains(item, "#") {
		b, found := snap.BlockByName(item)
		if !found {
			return 0, 0, false
		}
		count(b)
		return have, want, true
	}
	d, found := snap.DatasetByName(item)
	if !found {
		return 0, 0, false
	}
	for b := range snap.Blocks(d.ID) {
		count(b)
	}
	return have, want, true
}
