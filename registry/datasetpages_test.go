package registry

import (
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// TestDatasetGlobPagesAreBoundedAndComplete: with a page examining at
// most namesPerPage names, following next through every page of a glob
// listing yields exactly the matching datasets, in name order, for every
// limit and bound; a page cut by the bound may hold no item.
func TestDatasetGlobPagesAreBoundedAndComplete(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), nil)
	defer func(n int) { namesPerPage = n }(namesPerPage)
	snap := e.inv.Snapshot()
	sawShortPage := false
	for _, pattern := range []string{"*", "*MINIAOD", "*AOD", "/P/*", "/P/R-v2*", "*/NOTHING", "/Q/*"} {
		pat, err := glob.Compile(pattern)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for d := range snap.Datasets() {
			if pat.Match(d.Name) {
				want = append(want, d.Name)
			}
		}
		slices.Sort(want)
		for bound := 1; bound <= 4; bound++ {
			namesPerPage = bound
			for limit := 1; limit <= 4; limit++ {
				var got []string
				after := ""
				for pages := 0; ; pages++ {
					if pages > 10 {
						t.Fatalf("%s bound %d limit %d: no end after %d pages", pattern, bound, limit, pages)
					}
					var p Page[DatasetView]
					e.must("anon", "GET", fmt.Sprintf("/api/v1/datasets?name=%s&limit=%d&after=%s", url.QueryEscape(pattern), limit, url.QueryEscape(after)), nil, 200, &p)
					if len(p.Items) > limit {
						t.Fatalf("%s: %d items over limit %d", pattern, len(p.Items), limit)
					}
					if len(p.Items) < limit && p.Next != "" {
						sawShortPage = true
					}
					for _, v := range p.Items {
						got = append(got, v.Name)
					}
					if p.Next == "" {
						break
					}
					after = p.Next
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s bound %d limit %d: pages gave %q, want %q", pattern, bound, limit, got, want)
				}
			}
		}
	}
	if !sawShortPage {
		t.Error("no page was cut by the bound")
	}
}
