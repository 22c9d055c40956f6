package registry

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/scheduler"
)

type statRowJSON struct {
	Key  *string `json:"key"`
	Size float64 `json:"size"`
	Mean float64 `json:"mean"`
	RMS  float64 `json:"rms"`
}

// bytesOf turns Dynamo's TB back into bytes.
func bytesOf(tbs float64) int64 { return int64(math.Round(tbs * 1e12)) }

func statRows(t *testing.T, env envelope) map[string]statRowJSON {
	t.Helper()
	var body struct {
		Content []statRowJSON `json:"content"`
	}
	if err := json.Unmarshal(env.Data, &body); err != nil {
		t.Fatalf("stats data %s: %v", env.Data, err)
	}
	out := map[string]statRowJSON{}
	for _, r := range body.Content {
		k := "None"
		if r.Key != nil {
			k = *r.Key
		}
		out[k] = r
	}
	return out
}

func TestCompatGroupsAndStats(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		env := e.compat("anon", "GET", "/data/inventory/groups", nil, 200)
		var groups []map[string]string
		_ = json.Unmarshal(env.Data, &groups)
		if len(groups) != 2 || groups[0]["name"] != "AnalysisOps" || groups[1]["name"] != "DataOps" || groups[0]["olevel"] != "dataset" {
			t.Fatalf("groups: %s", env.Data)
		}
		env = e.compat("anon", "GET", "/data/inventory/groups?group=Data*", nil, 200)
		_ = json.Unmarshal(env.Data, &groups)
		if len(groups) != 1 || groups[0]["name"] != "DataOps" {
			t.Fatalf("groups glob: %s", env.Data)
		}

		// The fixture: /P/R-v1/AOD (mc, 180 bytes) at T2_A for AnalysisOps,
		// /P/R-v2/AOD (mc, 10 bytes) at T2_B for DataOps, /Q/R-v1/MINIAOD
		// (data, production) without replicas.
		rows := statRows(t, e.compat("anon", "GET", "/data/inventory/stats/size", nil, 200))
		if len(rows) != 2 || bytesOf(rows["mc"].Size) != 190 || bytesOf(rows["data"].Size) != 0 {
			t.Fatalf("size by data_type: %+v", rows)
		}
		rows = statRows(t, e.compat("anon", "GET", "/data/inventory/stats/size?list_by=group", nil, 200))
		if len(rows) != 2 || bytesOf(rows["AnalysisOps"].Size) != 180 || bytesOf(rows["DataOps"].Size) != 10 {
			t.Fatalf("size by group: %+v", rows)
		}
		// Constraints are regexps matched at the start, ORed within a key.
		code, env := e.form("anon", "/data/inventory/stats/size", url.Values{"list_by": {"site"}, "site[]": {"T2_B", "T1"}})
		rows = statRows(t, env)
		if code != 200 || len(rows) != 1 || bytesOf(rows["T2_B"].Size) != 10 {
			t.Fatalf("size by site at T2_B|T1*: %d %+v", code, rows)
		}
		rows = statRows(t, e.compat("anon", "GET", "/data/inventory/stats/size?list_by=dataset&dataset_status=prod", nil, 200))
		if len(rows) != 1 || bytesOf(rows["/Q/R-v1/MINIAOD"].Size) != 0 {
			t.Fatalf("size of production datasets: %+v", rows)
		}
		rows = statRows(t, e.compat("anon", "GET", "/data/inventory/stats/replication", nil, 200))
		if rows["mc"].Mean != 1 || rows["mc"].RMS != 0 || rows["data"].Mean != 0 {
			t.Fatalf("replication by data_type: %+v", rows)
		}
		env = e.compat("anon", "GET", "/data/inventory/stats/usage?list_by=group", nil, 200)
		var usage struct {
			Content []struct {
				Site  string        `json:"site"`
				Usage []statRowJSON `json:"usage"`
			} `json:"content"`
			Keys []string `json:"keys"`
		}
		if err := json.Unmarshal(env.Data, &usage); err != nil || len(usage.Content) != 2 || usage.Content[0].Site != "T2_A" ||
			bytesOf(usage.Content[0].Usage[0].Size) != 180 || *usage.Content[1].Usage[0].Key != "DataOps" || len(usage.Keys) != 2 {
			t.Fatalf("usage by group: %s", env.Data)
		}
		// Bad input names the field.
		for _, q := range []string{"list_by=colour", "site=(", "physical=maybe", "colour=red"} {
			env = e.compat("anon", "GET", "/data/inventory/stats/size?"+q, nil, 400)
			if env.Result != "Bad Request" || env.Message == "" {
				t.Fatalf("%s: %+v", q, env)
			}
		}
	})
}

func TestCompatAppLock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		// Before the scheduler is wired the routes say so.
		if env := e.compat("anon", "GET", "/data/applock/check?app=noop", nil, 503); env.Result != "Service Unavailable" {
			t.Fatalf("no scheduler: %+v", env)
		}
		log := logrus.New()
		log.SetOutput(io.Discard)
		sch, err := scheduler.New(scheduler.DefaultConfig(), e.inv, log.WithField("component", "scheduler"), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.RegisterBuiltins(); err != nil {
			t.Fatal(err)
		}
		e.srv.SetAppLocks(sch)

		env := e.compat("anon", "GET", "/data/applock/check?app=noop", nil, 200)
		if env.Message != "Not locked" || string(env.Data) != "null" {
			t.Fatalf("check free: %+v", env)
		}
		// Locking needs an operator of applications.
		e.compat("alice", "POST", "/data/applock/lock", `{"app": "noop"}`, 403)
		e.compat("anon", "POST", "/data/applock/lock", `{"app": "noop"}`, 401)
		type lockData struct {
			User     string  `json:"user"`
			Service  *string `json:"service"`
			LockTime int64   `json:"lock_time"`
			Depth    int     `json:"depth"`
			Note     string  `json:"note"`
		}
		var ld lockData
		env = e.compat("oscar", "POST", "/data/applock/lock", `{"app": "noop", "note": "moving disks"}`, 200)
		if err := json.Unmarshal(env.Data, &ld); err != nil || env.Message != "Success" || ld.User != "oscar" || ld.Service != nil ||
			ld.Depth != 1 || ld.Note != "moving disks" || time.Since(time.Unix(ld.LockTime, 0)) > time.Hour {
			t.Fatalf("lock: %+v %s", env, env.Data)
		}
		// Another operator queues behind: Wait, the holder unchanged.
		env = e.compat("ada", "GET", "/data/applock/lock?app=noop&service=ops", nil, 200)
		_ = json.Unmarshal(env.Data, &ld)
		if env.Message != "Wait" || ld.User != "oscar" {
			t.Fatalf("second lock: %+v", env)
		}
		env = e.compat("anon", "GET", "/data/applock/current", nil, 200)
		var cur []map[string]any
		if err := json.Unmarshal(env.Data, &cur); err != nil || len(cur) != 1 || cur[0]["app"] != "noop" || cur[0]["user"] != "oscar" {
			t.Fatalf("current: %s", env.Data)
		}
		env = e.compat("oscar", "POST", "/data/applock/unlock", `{"app": "noop"}`, 200)
		_ = json.Unmarshal(env.Data, &ld)
		if env.Message != "Locked" || ld.User != "ada" || ld.Service == nil || *ld.Service != "ops" {
			t.Fatalf("unlock hands over to ada (ops): %+v %s", env, env.Data)
		}
		st, err := sch.CheckAppLock(context.Background(), "noop")
		if err != nil || st == nil || st.User != "ada" {
			t.Fatalf("the scheduler sees: %+v %v", st, err)
		}
		env = e.compat("ada", "POST", "/data/applock/unlock", `{"app": "noop", "service": "ops"}`, 200)
		if env.Message != "Unlocked" || string(env.Data) != "null" {
			t.Fatalf("last unlock: %+v", env)
		}
		e.compat("oscar", "POST", "/data/applock/lock", `{"app": "no-such-app"}`, 404)
		e.compat("anon", "GET", "/data/applock/check", nil, 400)
		e.compat("oscar", "POST", "/data/applock/lock", `{"app": "noop", "service": "bad service!"}`, 400)
	})
}

func TestCompatDataRoutesInOpenAPI(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), nil)
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	e.must("anon", "GET", "/api/v1/openapi.json", nil, 200, &doc)
	for _, p := range []string{"inventory/groups", "inventory/stats/size", "inventory/stats/replication", "inventory/stats/usage",
		"applock/check", "applock/lock", "applock/unlock", "applock/current", "detox/partitions", "detox/cycles", "detox/summary",
		"detox/sitedetail", "transfers/history", "deletions/history"} {
		if doc.Paths["/data/"+p]["get"] == nil || doc.Paths["/data/"+p]["post"] == nil {
			t.Errorf("OpenAPI lacks /data/%s: %v", p, doc.Paths["/data/"+p])
		}
	}
}
