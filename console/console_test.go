package console_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/console"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

const fixture = `{
 "sites": [{"name": "T2_A", "storage_type": "disk", "status": "ready", "quotas": {"Default": 1000}},
           {"name": "T1_C_MSS", "storage_type": "mss", "status": "ready"}],
 "groups": [{"name": "AnalysisOps", "olevel": "dataset"}],
 "datasets": [{"name": "/P/R-v1/AOD", "status": "valid", "data_type": "mc", "is_open": false, "blocks": [{"name": "b1", "size": 300, "num_files": 3}]}],
 "dataset_replicas": [{"dataset": "/P/R-v1/AOD", "site": "T2_A", "group": "AnalysisOps", "growing": false}]
}`

// brokenQueue is a transfer queue whose database fails with a message
// that names a physical path and a driver: neither may reach the page.
type brokenQueue struct{ *fileop.API }

func (brokenQueue) Queue(context.Context) ([]fileop.LinkRow, error) {
	return nil, errors.New("sqlite: unable to open /var/lib/dynamo/secret.db")
}

type env struct {
	url  string
	logs *test.Hook
}

func newEnv(t *testing.T, d *db.DB, src func(console.Sources) console.Sources) *env {
	ctx := context.Background()
	log, hook := test.NewNullLogger()
	inv, err := inventory.Load(ctx, d, log.WithField("component", "inventory"), nil, time.Now())
	require.NoError(t, err)
	doc, err := inventory.DecodeInjectDoc(strings.NewReader(fixture))
	require.NoError(t, err)
	_, err = inv.Inject(ctx, time.Now(), doc)
	require.NoError(t, err)
	srv, err := registry.New(registry.Options{Config: registry.DefaultConfig(), DB: d, Log: log.WithField("component", "registry"), Inventory: inv})
	require.NoError(t, err)
	s := console.Sources{Inventory: inv, Detox: detox.NewHistory(d), Requests: srv.Store(), Transfers: &fileop.API{DB: d}}
	if src != nil {
		s = src(s)
	}
	c, err := console.New(console.Options{Sources: s, Access: srv, Log: logrus.NewEntry(log)})
	require.NoError(t, err)
	srv.MountPages("/", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetRegistry}}, c.RenderError, c.Routes)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{url: ts.URL, logs: hook}
}

func (e *env) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(e.url + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Bad input on every page gets an HTML error page naming the problem;
// what users type is escaped; components not running say so.
func TestPagesBadInputAndEscaping(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), nil)
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/", 200, `data-site="T2_A"`},
		{"/sites/T2_A", 200, "/P/R-v1/AOD"},
		{"/sites/NOPE", 404, "no site NOPE"},
		{"/detox/cycles/abc", 400, "want a positive integer"},
		{"/detox/cycles/-1", 400, "want a positive integer"},
		{"/detox/cycles/999", 404, "no such detox cycle"},
		{"/detox/explain", 400, "give site and dataset"},
		{"/detox/explain?site=T2_A&dataset=/P/R-v1/AOD", 404, "no Detox cycle decided"},
		{"/detox/explain?site=T2_A&dataset=/P/R-v1/AOD&cycle=x", 400, "want a positive integer"},
		{"/dealer", 200, "not running on this server"},
		{"/consistency", 200, "not running on this server"},
		{"/scheduler", 200, "not running on this server"},
		{"/transfers", 200, "nothing held"},
		{"/requests", 200, "Copy requests"},
		{"/login?next=//evil.example/", 200, `name="next" value="/"`},
		{"/ui", 200, "Federation"},
	} {
		code, body := e.get(t, c.path)
		require.Equal(t, c.code, code, "%s: %s", c.path, body)
		require.Contains(t, body, c.want, c.path)
		require.Contains(t, body, "</html>", "%s renders a whole page", c.path)
	}
	_, body := e.get(t, "/detox?dataset=%3Cscript%3Ealert(1)%3C/script%3E")
	require.NotContains(t, body, "<script>alert(1)</script>")
	require.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
}

// A failing source is a 500 page that says to read the log; the detail,
// which may name files or drivers, goes to the log only.
func TestSourceErrorsStayInTheLog(t *testing.T) {
	d := testdb.SQLite(t)
	e := newEnv(t, d, func(s console.Sources) console.Sources {
		s.Transfers = brokenQueue{&fileop.API{DB: d}}
		return s
	})
	code, body := e.get(t, "/transfers")
	require.Equal(t, http.StatusInternalServerError, code)
	require.Contains(t, body, "internal error; see the server log")
	require.NotContains(t, body, "/var/lib")
	require.NotContains(t, body, "sqlite")
	found := false
	for _, en := range e.logs.AllEntries() {
		if err, ok := en.Data[logrus.ErrorKey].(error); ok && strings.Contains(err.Error(), "secret.db") {
			found = true
		}
	}
	require.True(t, found, "the detail is logged")
	// The federation page still renders and says what it could not read.
	code, body = e.get(t, "/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "transfer queue unavailable")
	require.NotContains(t, body, "secret.db")
}

// fakeConsistency reports one site whose last run tripped a safety valve.
type fakeConsistency struct{}

func (fakeConsistency) SiteStatuses(context.Context) ([]consistency.SiteStatus, error) {
	return []consistency.SiteStatus{
		{Site: "T2_A", LastRun: &consistency.RunRecord{ID: 7, Site: "T2_A", Status: consistency.StatusAlert, Message: "missing 40% > max 5%"}},
		{Site: "T1_C_MSS"},
	}, nil
}

func (fakeConsistency) Runs(context.Context, string, int) ([]consistency.RunRecord, error) {
	return []consistency.RunRecord{{ID: 7, Site: "T2_A", Status: consistency.StatusAlert}}, nil
}

// The consistency page lists the sites whose safety valves tripped.
func TestConsistencyAlerts(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), func(s console.Sources) console.Sources {
		s.Consistency = fakeConsistency{}
		return s
	})
	code, body := e.get(t, "/consistency")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "Safety valves tripped")
	require.Contains(t, body, "T2_A: missing 40% &gt; max 5%")
	require.Contains(t, body, "never checked")
}
