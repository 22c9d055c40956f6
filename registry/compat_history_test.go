package registry

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

func execAll(t *testing.T, d *db.DB, stmts ...[]any) {
	t.Helper()
	for _, s := range stmts {
		if _, err := d.ExecContext(context.Background(), s[0].(string), s[1:]...); err != nil {
			t.Fatalf("%s: %v", s[0], err)
		}
	}
}

func TestCompatDetoxSummaries(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		e.compat("anon", "GET", "/data/detox/summary?partition=Physics", nil, 404)
		cycle := `INSERT INTO detox_cycles (id, partition_name, policy_file, policy_text, inventory_seq, started, finished, status, message)
			VALUES (?, 'Physics', 'physics.txt', ?, 1, ?, ?, 'applied', '')`
		site := `INSERT INTO detox_cycle_sites (cycle_id, site_name, quota, before_bytes, after_bytes, triggered, released,
			deleted_bytes, deleted_replicas, deleted_files, protected_bytes, iterations) VALUES (?, ?, ?, ?, ?, 1, 1, ?, 1, 1, ?, 1)`
		rep := `INSERT INTO detox_cycle_replicas (cycle_id, site_name, dataset_name, blocks, decision, action, line, reason, size, files)
			VALUES (?, ?, ?, '', ?, ?, ?, 'rule', ?, 1)`
		policy := "On site.name == T2_*\nProtect dataset.name == /P/*\nDismiss dataset.status == valid\n"
		execAll(t, d,
			[]any{cycle, 1, policy, 100, 110},
			[]any{site, 1, "T2_A", int64(2e12), 0, 0, 0, int64(3e12)},
			[]any{rep, 1, "T2_A", "/P/R-v1/AOD", "protect", "Protect", 2, int64(3e12)},
			[]any{cycle, 2, policy, 200, 210},
			[]any{site, 2, "T2_A", int64(2e12), 0, 0, int64(1e12), int64(2e12)},
			[]any{site, 2, "T2_B", int64(1e12), 0, 0, 0, 0},
			[]any{rep, 2, "T2_A", "/P/R-v1/AOD", "protect", "Protect", 2, int64(2e12)},
			[]any{rep, 2, "T2_A", "/X/Y/Z", "delete", "Dismiss", 3, int64(1e12)},
			[]any{rep, 2, "T2_B", "/Q/R-v1/MINIAOD", "keep", "Keep", 0, int64(5e11)},
		)
		env := e.compat("anon", "GET", "/data/detox/partitions", nil, 200)
		if string(env.Data) != `[{"name":"Physics"}]` {
			t.Fatalf("partitions: %s", env.Data)
		}
		env = e.compat("anon", "GET", "/data/detox/cycles?partition=Physics", nil, 200)
		var cycles []map[string]any
		if err := json.Unmarshal(env.Data, &cycles); err != nil || len(cycles) != 2 || cycles[0]["cycle"].(float64) != 2 || cycles[0]["policy_version"] != "physics.txt" {
			t.Fatalf("cycles: %s", env.Data)
		}
		// The only partition is the default; the newest cycle the default cycle.
		env = e.compat("anon", "GET", "/data/detox/summary", nil, 200)
		var sum struct {
			Cycle    int64            `json:"cycle"`
			Prev     int64            `json:"previous_cycle"`
			Next     int64            `json:"next_cycle"`
			SiteData []map[string]any `json:"site_data"`
		}
		if err := json.Unmarshal(env.Data, &sum); err != nil || sum.Cycle != 2 || sum.Prev != 1 || sum.Next != 0 || len(sum.SiteData) != 3 {
			t.Fatalf("summary: %s", env.Data)
		}
		tot, a, b := sum.SiteData[0], sum.SiteData[1], sum.SiteData[2]
		near := func(v any, want float64) bool { return math.Abs(v.(float64)-want) < 1e-9 }
		if tot["name"] != "Total" || !near(tot["delete"], 1) || !near(tot["protect"], 2) || !near(tot["keep"], 0.5) || !near(tot["quota"], 3) ||
			!near(tot["protect_prev"], 3) {
			t.Fatalf("total: %v", tot)
		}
		if a["name"] != "T2_A" || !near(a["delete"], 1) || a["delete_bytes"].(float64) != 1e12 || !near(a["protect_prev"], 3) || b["name"] != "T2_B" || !near(b["keep"], 0.5) {
			t.Fatalf("sites: %v %v", a, b)
		}
		env = e.compat("anon", "GET", "/data/detox/summary?partition=Physics&cycle=1", nil, 200)
		_ = json.Unmarshal(env.Data, &sum)
		if sum.Cycle != 1 || sum.Next != 2 || sum.Prev != 0 {
			t.Fatalf("summary of cycle 1: %s", env.Data)
		}
		env = e.compat("anon", "GET", "/data/detox/sitedetail?site=T2_A", nil, 200)
		var detail struct {
			Content struct {
				Datasets []map[string]any `json:"datasets"`
			} `json:"content"`
			Conditions map[string]string `json:"conditions"`
		}
		if err := json.Unmarshal(env.Data, &detail); err != nil || len(detail.Content.Datasets) != 2 ||
			detail.Conditions["3"] != "Dismiss dataset.status == valid" || detail.Content.Datasets[1]["decision"] != "delete" {
			t.Fatalf("sitedetail: %s", env.Data)
		}
		e.compat("anon", "GET", "/data/detox/sitedetail", nil, 400)
		e.compat("anon", "GET", "/data/detox/summary?cycle=99", nil, 404)
		e.compat("anon", "GET", "/data/detox/summary?cycle=x", nil, 400)
		e.compat("anon", "GET", "/data/detox/summary?partition=Other&cycle=1", nil, 404)
	})
}

func TestCompatFileHistory(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		snap := e.inv.Snapshot()
		siteA, _ := snap.SiteByName("T2_A")
		siteB, _ := snap.SiteByName("T2_B")
		b1, _ := snap.BlockByName("/P/R-v1/AOD#b1")
		c1, _ := snap.BlockByName("/P/R-v2/AOD#c1")
		sub := `INSERT INTO fileop_subscriptions (id, op, file_id, block_id, site_id, lfn, size, state, created, updated)
			VALUES (?, ?, ?, ?, ?, ?, 10, 'done', 1, 1)`
		hist := `INSERT INTO fileop_history (subscription_id, op, file_id, lfn, source_site_id, site_id, source, destination, backend, outcome,
			bytes, exit_code, message, finished) VALUES (?, ?, ?, ?, ?, ?, 'file:///physical/src', 'file:///physical/dst', 'native', ?, 10, ?, ?, ?)`
		execAll(t, d,
			[]any{sub, 1, "transfer", 11, b1.ID, siteB.ID, "/store/p/1.root"},
			[]any{hist, 1, "transfer", 11, "/store/p/1.root", siteA.ID, siteB.ID, "failed", 5, "no space", 1000},
			[]any{hist, 1, "transfer", 11, "/store/p/1.root", siteA.ID, siteB.ID, "done", 0, "", 2000},
			[]any{sub, 2, "transfer", 12, c1.ID, siteA.ID, "/store/p2/1.root"},
			[]any{hist, 2, "transfer", 12, "/store/p2/1.root", siteB.ID, siteA.ID, "done", 0, "", 3000},
			[]any{sub, 3, "deletion", 13, c1.ID, siteB.ID, "/store/p2/1.root"},
			[]any{hist, 3, "deletion", 12, "/store/p2/1.root", 0, siteB.ID, "done", 0, "", 4000},
		)
		type page struct {
			Items []map[string]any `json:"items"`
			Next  string           `json:"next"`
		}
		get := func(path string) page {
			t.Helper()
			var p page
			env := e.compat("anon", "GET", path, nil, 200)
			if err := json.Unmarshal(env.Data, &p); err != nil {
				t.Fatalf("%s: %s", path, env.Data)
			}
			return p
		}
		p := get("/data/transfers/history")
		if len(p.Items) != 3 || p.Items[0]["lfn"] != "/store/p2/1.root" || p.Items[0]["source"] != "T2_B" || p.Items[0]["destination"] != "T2_A" ||
			p.Items[0]["dataset"] != "/P/R-v2/AOD" || p.Items[0]["block"] != "c1" || p.Next != "" {
			t.Fatalf("all transfers: %+v", p)
		}
		for _, it := range p.Items {
			for k, v := range it {
				if s, ok := v.(string); ok && len(s) > 9 && s[:9] == "file:///p" {
					t.Fatalf("history shows a physical URL in %s: %v", k, it)
				}
			}
		}
		if p = get("/data/transfers/history?destination=T2_B"); len(p.Items) != 2 {
			t.Fatalf("to T2_B: %+v", p)
		}
		if p = get("/data/transfers/history?site=T2_A&dataset=/P/R-v1/AOD&outcome=failed"); len(p.Items) != 1 || p.Items[0]["exit_code"].(float64) != 5 {
			t.Fatalf("failed transfers of /P/R-v1/AOD at T2_A: %+v", p)
		}
		if p = get("/data/transfers/history?since=1970-01-01T00:25:00Z&until=1970-01-01T00:45:00Z"); len(p.Items) != 1 || p.Items[0]["finished_unix"].(float64) != 2000 {
			t.Fatalf("time window: %+v", p)
		}
		// Pages: newest first, next until the last.
		p = get("/data/transfers/history?limit=2")
		if len(p.Items) != 2 || p.Next == "" {
			t.Fatalf("page 1: %+v", p)
		}
		p2 := get("/data/transfers/history?limit=2&before=" + p.Next)
		if len(p2.Items) != 1 || p2.Items[0]["finished_unix"].(float64) != 1000 {
			t.Fatalf("page 2: %+v", p2)
		}
		if p = get("/data/deletions/history?site=T2_*"); len(p.Items) != 1 || p.Items[0]["site"] != "T2_B" || p.Items[0]["dataset"] != "/P/R-v2/AOD" {
			t.Fatalf("deletions: %+v", p)
		}
		for _, q := range []string{"/data/transfers/history?site=T9_*", "/data/transfers/history?dataset=/No/Such/DS",
			"/data/transfers/history?outcome=maybe", "/data/transfers/history?limit=0", "/data/transfers/history?before=x",
			"/data/deletions/history?source=T2_A", "/data/transfers/history?since=yesterday-ish"} {
			e.compat("anon", "GET", q, nil, 400)
		}
	})
}
