package srm

import (
	"context"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// The dead-property store on both dialects: long names and namespaces,
// LIKE metacharacters in paths, subtree copy, move and drop.
func TestDeadPropsStore(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		s := &Server{db: d}
		ctx := context.Background()
		long := xml.Name{Space: "http://example.org/" + strings.Repeat("n", 600), Local: strings.Repeat("p", 300)}
		set := func(stfn string, n xml.Name, v string) {
			t.Helper()
			must(t, s.applyPatch(ctx, stfn, []patchOp{{prop: davProp{Name: n, Value: []byte(v)}}}))
		}
		set("/a_b/x", long, "v1")
		set("/a_b/x/y", xml.Name{Local: "nullns"}, "v2")
		set("/aXb/x", xml.Name{Space: "s", Local: "other"}, "v3") // "_" must not match "X"
		set("/a_b/x", long, "v1b")                                // replace
		props, err := s.deadProps(ctx, "/a_b/x")
		must(t, err)
		if len(props) != 1 || string(props[0].Value) != "v1b" || props[0].Name != long {
			t.Fatalf("props %+v", props)
		}
		must(t, s.copyProps(ctx, "/a_b", "/c", true, true))
		if p, _ := s.deadProps(ctx, "/c/x/y"); len(p) != 1 || string(p[0].Value) != "v2" {
			t.Errorf("moved subtree: %+v", p)
		}
		if p, _ := s.deadProps(ctx, "/a_b/x"); len(p) != 0 {
			t.Errorf("move left the source: %+v", p)
		}
		if p, _ := s.deadProps(ctx, "/aXb/x"); len(p) != 1 {
			t.Errorf("a LIKE metacharacter matched a sibling: %+v", p)
		}
		must(t, s.dropProps(ctx, "/c"))
		if n, _ := s.countDeadProps(ctx, "/c/x"); n != 0 {
			t.Errorf("drop left %d", n)
		}
		must(t, s.applyPatch(ctx, "/aXb/x", []patchOp{{remove: true, prop: davProp{Name: xml.Name{Space: "s", Local: "other"}}}}))
		if n, _ := s.countDeadProps(ctx, "/aXb/x"); n != 0 {
			t.Errorf("remove left %d", n)
		}
	})
}
