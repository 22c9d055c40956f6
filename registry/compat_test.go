package registry

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

type envelope struct {
	Result  string          `json:"result"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// form posts a form-encoded body as Dynamo's clients (curl -d) do.
func (e *tenv) form(who, path string, v url.Values) (int, envelope) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tc := &tls.Config{RootCAs: e.pki.pool}
	if who != "anon" {
		tc.Certificates = []tls.Certificate{e.certs[who]}
	}
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		e.t.Fatalf("%s: not an envelope: %s", path, b)
	}
	return resp.StatusCode, env
}

func (e *tenv) compat(who, method, path string, body any, want int) envelope {
	e.t.Helper()
	var env envelope
	e.must(who, method, path, body, want, &env)
	return env
}

func TestCompatAliases(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		// request/copy with item[] and site[] as a form, as Dynamo's docs show.
		code, env := e.form("alice", "/data/request/copy", url.Values{"item[]": {"/P/R-v1/AOD"}, "site[]": {"T2_B"}, "group": {"DataOps"}})
		if code != 200 || env.Result != "OK" {
			t.Fatalf("copy: %d %+v", code, env)
		}
		var reqs []map[string]any
		if err := json.Unmarshal(env.Data, &reqs); err != nil || len(reqs) != 1 {
			t.Fatalf("copy data: %s", env.Data)
		}
		r := reqs[0]
		for _, k := range []string{"request_id", "item", "site", "status", "user", "dn", "group", "n", "first_request", "last_request", "request_count", "active"} {
			if _, ok := r[k]; !ok {
				t.Errorf("Request lacks %q: %v", k, r)
			}
		}
		if r["status"] != "new" || r["group"] != "DataOps" || !strings.HasSuffix(r["first_request"].(string), " UTC") {
			t.Errorf("request: %v", r)
		}
		id := int64(r["request_id"].(float64))
		// The same request as JSON is reused.
		env = e.compat("bob", "POST", "/data/request/copy", `{"item": ["/P/R-v1/AOD"], "site": ["T2_B"], "group": "DataOps"}`, 200)
		_ = json.Unmarshal(env.Data, &reqs)
		if int64(reqs[0]["request_id"].(float64)) != id || reqs[0]["request_count"].(float64) != 2 || env.Message != "Request updated" {
			t.Fatalf("reuse: %s %s", env.Message, env.Data)
		}
		// pollcopy by GET with query parameters, anonymously.
		env = e.compat("anon", "GET", "/data/request/pollcopy?request_id="+itoa(id), nil, 200)
		_ = json.Unmarshal(env.Data, &reqs)
		if len(reqs) != 1 || reqs[0]["request_count"].(float64) != 2 {
			t.Fatalf("pollcopy: %s", env.Data)
		}
		env = e.compat("anon", "GET", "/data/request/pollcopy?item[]="+url.QueryEscape("/P/R-v1/AOD")+"&site[]=T2_B&status=new", nil, 200)
		if err := json.Unmarshal(env.Data, &reqs); err != nil || len(reqs) != 1 {
			t.Fatalf("pollcopy item+site: %s", env.Data)
		}
		// cancelcopy by someone else is refused in the envelope.
		code, env = e.form("bob", "/data/request/cancelcopy", url.Values{"request_id": {itoa(id)}})
		if code != 403 || env.Result != "Forbidden" || env.Data != nil && string(env.Data) != "null" {
			t.Fatalf("cancel by bob: %d %+v", code, env)
		}
		env = e.compat("alice", "POST", "/data/request/cancelcopy?request_id="+itoa(id), nil, 200)
		var one map[string]any
		_ = json.Unmarshal(env.Data, &one)
		if one["status"] != "cancelled" {
			t.Fatalf("cancel: %s", env.Data)
		}
		// delete + polldelete: deletion requests carry request_time.
		env = e.compat("alice", "POST", "/data/request/delete", `{"item": ["/P/R-v2/AOD"], "site": ["T2_B"]}`, 200)
		_ = json.Unmarshal(env.Data, &reqs)
		if _, ok := reqs[0]["request_time"]; !ok {
			t.Fatalf("deletion shape: %v", reqs[0])
		}
		env = e.compat("anon", "POST", "/data/request/polldelete", `{"user": ["alice"]}`, 200)
		_ = json.Unmarshal(env.Data, &reqs)
		if len(reqs) != 1 {
			t.Fatalf("polldelete: %s", env.Data)
		}

		// Locks.
		env = e.compat("alice", "POST", "/data/detox/lock/lock", `{"item": "/P/*/AOD", "expires": "2099-01-01", "sites": "T2_A", "comment": "keep"}`, 200)
		if env.Message != "Lock created" {
			t.Fatalf("lock: %+v", env)
		}
		var locks []map[string]any
		_ = json.Unmarshal(env.Data, &locks)
		for _, k := range []string{"lockid", "user", "dn", "item", "locked", "expires", "sites", "comment"} {
			if _, ok := locks[0][k]; !ok {
				t.Errorf("lock lacks %q: %v", k, locks[0])
			}
		}
		if locks[0]["expires"] != "2099-01-01 00:00:00 UTC" {
			t.Errorf("expires %v", locks[0]["expires"])
		}
		env = e.compat("alice", "POST", "/data/detox/lock/lock", `{"item": "/P/*/AOD", "expires": "2099-02-01", "sites": "T2_A", "comment": "keep"}`, 200)
		if env.Message != "Lock updated" {
			t.Fatalf("lock update: %+v", env)
		}
		env = e.compat("alice", "POST", "/data/detox/lock/set?service=web", `[{"item": "/Q/R-v1/MINIAOD", "expires": "2099-01-01"}, {"item": "/P/R-v1/AOD#b1", "expires": "2099-01-01", "groups": ["AnalysisOps"]}]`, 200)
		_ = json.Unmarshal(env.Data, &locks)
		if len(locks) != 2 || locks[0]["service"] != "web" {
			t.Fatalf("set: %s", env.Data)
		}
		env = e.compat("anon", "GET", "/data/detox/lock/list?service=web", nil, 200)
		_ = json.Unmarshal(env.Data, &locks)
		if len(locks) != 2 {
			t.Fatalf("list service=web: %s", env.Data)
		}
		env = e.compat("alice", "POST", "/data/detox/lock/unlock", `{"service": "web"}`, 200)
		_ = json.Unmarshal(env.Data, &locks)
		if len(locks) != 2 || locks[0]["unlocked"] == nil {
			t.Fatalf("unlock: %s", env.Data)
		}
		env = e.compat("anon", "GET", "/data/detox/lock/list?showall=1&user=alice", nil, 200)
		_ = json.Unmarshal(env.Data, &locks)
		if len(locks) != 3 {
			t.Fatalf("list showall: %s", env.Data)
		}

		// Inventory, in TB.
		env = e.compat("anon", "GET", "/data/inventory/sites?site=T2_A,T2_B&partition=Default", nil, 200)
		var sites []map[string]any
		_ = json.Unmarshal(env.Data, &sites)
		if len(sites) != 2 || sites[0]["total_quota"].(float64) != 1 || sites[0]["host"] != "se.a" {
			t.Fatalf("sites: %s", env.Data)
		}
		parts := sites[0]["partitions"].([]any)
		if p := parts[0].(map[string]any); p["type"] != "basic" || p["name"] != "Default" {
			t.Fatalf("partition shape: %v", p)
		}
		env = e.compat("anon", "GET", "/data/inventory/datasets?dataset="+url.QueryEscape("/P/*"), nil, 200)
		var ds []map[string]any
		_ = json.Unmarshal(env.Data, &ds)
		if len(ds) != 2 || ds[0]["type"] != "mc" || ds[0]["num_files"].(float64) != 5 {
			t.Fatalf("datasets: %s", env.Data)
		}
		// Dynamo's injection document: singular keys, files by name.
		dyn := `{"site": [{"name": "T2_D", "host": "se.d", "storage_type": "DISK"}], "group": [{"name": "Dyn"}],
			"dataset": [{"name": "/D/R-v1/RAW", "status": "VALID", "data_type": "data", "blocks": [{"name": "x1", "files": [{"name": "/store/d/1", "size": 5}]}]}],
			"datasetreplica": [{"dataset": "/D/R-v1/RAW", "site": "T2_D", "group": "Dyn", "blockreplicas": [{"block": "x1"}]}]}`
		env = e.compat("ada", "POST", "/data/inventory/inject", dyn, 200)
		if !strings.Contains(env.Message, "regular update cycle") {
			t.Fatalf("inject: %+v", env)
		}
		if _, err := ApplyQueuedInjections(t.Context(), e.inv, e.srv.log, 0); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.inv.Snapshot().BlockByName("/D/R-v1/RAW#x1"); !ok {
			t.Fatal("Dynamo-format injection not applied")
		}
		// Dynamo's /registry/ alias answers like /data/.
		env = e.compat("alice", "POST", "/registry/detoxlock/lock", `{"item": "/Q/*", "expires": "2099-03-01"}`, 200)
		if env.Message != "Lock created" {
			t.Fatalf("registry alias: %+v", env)
		}
		env = e.compat("anon", "POST", "/registry/request/copy", `{"item": ["/P/R-v1/AOD"], "site": ["T2_A"]}`, 401)
		if env.Result != "Unauthorized" {
			t.Fatalf("registry alias error: %+v", env)
		}
		// Errors come in the envelope, naming the parameter.
		env = e.compat("alice", "POST", "/data/request/copy", `{"item": ["/P/R-v1/AOD"], "sites": ["T2_A"]}`, 400)
		if env.Result != "Bad Request" || !strings.Contains(env.Message, "sites") {
			t.Fatalf("unknown param: %+v", env)
		}
		env = e.compat("anon", "POST", "/data/request/copy", `{"item": ["/P/R-v1/AOD"], "site": ["T2_A"]}`, 401)
		if env.Result != "Unauthorized" {
			t.Fatalf("anon copy: %+v", env)
		}
		env = e.compat("anon", "GET", "/data/inventory/datasets?dataset=/P/[", nil, 400)
		if !strings.Contains(env.Message, "dataset") {
			t.Fatalf("bad glob: %+v", env)
		}
	})
}
