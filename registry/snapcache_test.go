package registry

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

// usageBySiteDirect is what /usage?by=site must answer, from the snapshot.
func usageBySiteDirect(snap *inventory.Snapshot) []UsageRow {
	var rows []UsageRow
	for _, site := range snap.Sites() {
		r := UsageRow{Key: site.Name}
		for _, p := range snap.Partitions() {
			if len(p.Subs) == 0 {
				u := snap.Usage(site.ID, p.ID)
				r.Quota, r.Used, r.Projected = r.Quota+u.Quota, r.Used+u.Physical, r.Projected+u.Projected
			}
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b UsageRow) int { return strings.Compare(a.Key, b.Key) })
	return rows
}

// TestSnapshotResponsesFollowWrites: the site list and usage, answered
// from a per-snapshot cache, equal a direct computation (and the
// uncached filtered route) before and after a write that changes them.
func TestSnapshotResponsesFollowWrites(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), nil)
	check := func(when string, wantSites int) {
		t.Helper()
		for range 2 { // built, then served from the cache
			all := e.must("anon", "GET", "/api/v1/sites", nil, 200, nil)
			filtered := e.must("anon", "GET", "/api/v1/sites?site=*", nil, 200, nil)
			if string(all) != string(filtered) {
				t.Fatalf("%s: /sites\n%s\ndiffers from /sites?site=*\n%s", when, all, filtered)
			}
			var sites Page[SiteView]
			if err := json.Unmarshal(all, &sites); err != nil || len(sites.Items) != wantSites {
				t.Fatalf("%s: %d sites (%v), want %d", when, len(sites.Items), err, wantSites)
			}
			var u Page[UsageRow]
			e.must("anon", "GET", "/api/v1/usage?by=site", nil, 200, &u)
			if want := usageBySiteDirect(e.inv.Snapshot()); !slices.Equal(u.Items, want) {
				t.Fatalf("%s: usage by site %+v, want %+v", when, u.Items, want)
			}
			e.must("anon", "GET", "/api/v1/usage?by=partition", nil, 200, &u)
			var used int64
			for _, r := range usageBySiteDirect(e.inv.Snapshot()) {
				used += r.Used
			}
			if len(u.Items) != 1 || u.Items[0].Used != used {
				t.Fatalf("%s: usage by partition %+v, want one row using %d", when, u.Items, used)
			}
		}
	}
	check("fixture", 3)
	doc, err := inventory.DecodeInjectDoc(strings.NewReader(`{
 "sites": [{"name": "T3_D", "storage_type": "disk", "status": "ready", "quotas": {"Default": 7000}}],
 "dataset_replicas": [{"dataset": "/Q/R-v1/MINIAOD", "site": "T2_B", "group": "DataOps"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.inv.Inject(context.Background(), time.Now(), doc); err != nil {
		t.Fatal(err)
	}
	check("after a write", 4)
}
