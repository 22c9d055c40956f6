package detox

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
)

// envelope holds a success answer (Dynamo's envelope) or an error (the
// API's one error envelope).
type envelope struct {
	Result  string          `json:"result"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
	Error   string          `json:"error"`
	Code    string          `json:"code"`
	Field   string          `json:"field"`
}

func call(t *testing.T, r http.Handler, method, path, body string) (int, envelope) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	var e envelope
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e), w.Body.String())
	return w.Code, e
}

func TestREST(t *testing.T) {
	gin.SetMode(gin.TestMode)
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		h := seedApply(t, d)
		id, err := NewHistory(d).Record(h.ctx, h.plan, StatusPlanned, true, "", time.Now())
		require.NoError(t, err)
		r := gin.New()
		r.Use(apierr.Middleware(nil, 0))
		Routes(r.Group("/data/detox"), d)

		code, e := call(t, r, "GET", "/data/detox/cycles?partition=Default", "")
		require.Equal(t, 200, code)
		var cs []CycleRow
		require.NoError(t, json.Unmarshal(e.Data, &cs))
		require.Len(t, cs, 1)
		require.Equal(t, id, cs[0].ID)

		code, e = call(t, r, "GET", "/data/detox/cycles/"+itoa(id), "")
		require.Equal(t, 200, code)
		var c CycleRow
		require.NoError(t, json.Unmarshal(e.Data, &c))
		require.Equal(t, applyPolicy, c.PolicyText)

		code, e = call(t, r, "GET", "/data/detox/cycles/"+itoa(id)+"/sites", "")
		require.Equal(t, 200, code)
		var ss []CycleSiteRow
		require.NoError(t, json.Unmarshal(e.Data, &ss))
		require.Len(t, ss, 1)
		require.Equal(t, "T2_A", ss[0].Site)
		require.Equal(t, int64(300), ss[0].DeletedBytes)

		code, e = call(t, r, "GET", "/data/detox/cycles/"+itoa(id)+"/replicas?site=T2_A", "")
		require.Equal(t, 200, code)
		var rs []CycleReplicaRow
		require.NoError(t, json.Unmarshal(e.Data, &rs))
		require.Len(t, rs, 2)
		got := map[string]string{}
		for _, x := range rs {
			got[x.Dataset] = x.Decision + " / " + x.RuleText + " / " + x.Reason
		}
		require.Equal(t, map[string]string{
			"/Gone/R-v1/AOD": "delete / (default) Dismiss / dismissed, site over its trigger",
			"/Keep/R-v1/AOD": "protect / Protect dataset.name == /Keep/*/* / policy line",
		}, got)

		code, _ = call(t, r, "GET", "/data/detox/cycles/999/sites", "")
		require.Equal(t, 404, code)
		code, e = call(t, r, "GET", "/data/detox/cycles/x", "")
		require.Equal(t, 400, code)
		require.Contains(t, e.Error, "cycle id")
		code, _ = call(t, r, "GET", "/data/detox/cycles?limit=-1", "")
		require.Equal(t, 400, code)

		code, e = call(t, r, "POST", "/data/detox/access", `[{"dataset": "/Gone/R-v1/AOD", "site": "T2_A", "count": 4, "at": "2026-10-01T00:00:00Z"}]`)
		require.Equal(t, 200, code, e.Message)
		code, e = call(t, r, "POST", "/data/detox/access", `{"dataset": "/Gone/R-v1/AOD", "site": "T2_A", "extra": 1}`)
		require.Equal(t, 400, code)
		require.Equal(t, "unknown_field", e.Code)
		require.Equal(t, "extra", e.Field)
		code, e = call(t, r, "POST", "/data/detox/access", `{"dataset": "not a dataset", "site": "T2_A"}`)
		require.Equal(t, 400, code)
		require.Contains(t, e.Error, "dataset")
		acc, err := DBAccesses{DB: d}.Accesses(h.ctx, time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC))
		require.NoError(t, err)
		require.Len(t, acc, 1)
		require.Equal(t, int64(4), acc[0].NumAccess)
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
