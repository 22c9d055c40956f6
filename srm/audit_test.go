package srm

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// TestAuditAndMetrics: one info line per SRM call and per data request,
// naming who did what, and the counters and area gauges on /metrics.
func TestAuditAndMetrics(t *testing.T) {
	se := startSE(t, nil, nil)
	hook := logtest.NewLocal(se.log.Logger)
	c, hc, S := clientFor(t, se)
	ctx := context.Background()
	must(t, os.WriteFile(filepath.Join(se.Root, "f"), []byte("hello"), 0o644))
	if _, err := c.Stat(ctx, S+"f"); err != nil {
		t.Fatal(err)
	}
	turl, _, err := c.GetTURL(ctx, S+"f", "https")
	must(t, err)
	if resp, b := httpDo(t, hc, "GET", turl, nil); resp.StatusCode != http.StatusOK || string(b) != "hello" {
		t.Fatalf("GET: %d %q", resp.StatusCode, b)
	}
	var call, data *logrus.Entry
	for _, e := range hook.AllEntries() {
		switch {
		case e.Message == "srm call" && e.Data["op"] == "srmLs":
			call = e
		case e.Message == "data request" && e.Data["op"] == "GET":
			data = e
		}
	}
	if call == nil || call.Level != logrus.InfoLevel || call.Data["dn"] != "/DC=org/DC=example/CN=Test User" ||
		call.Data["status"] != "SRM_SUCCESS" || call.Data["surl"] != S+"f" || call.Data["duration_ms"] == nil {
		t.Errorf("srm call audit: %+v", call)
	}
	if data == nil || data.Data["path"] != "/f" || data.Data["status"] != 200 || data.Data["bytes_out"] != int64(5) ||
		data.Data["dn"] != "/DC=org/DC=example/CN=Test User" {
		t.Errorf("data request audit: %+v", data)
	}
	_, b := httpDo(t, hc, "GET", "https://localhost:"+port(se.SRMAddr().String())+"/metrics", nil)
	for _, want := range []string{
		`dynamo_srm_requests_total{method="srmLs",status="SRM_SUCCESS"} 1`,
		`dynamo_srm_data_requests_total{code="200",method="GET"} 1`,
		`dynamo_srm_data_bytes_total{direction="out"} 5`,
		`dynamo_srm_area_used_bytes{area="root"}`,
		`dynamo_srm_area_free_bytes{area="root"}`,
		`dynamo_srm_queue_depth`,
		`dynamo_srm_queue_refusals_total 0`,
		`dynamo_srm_recalls_in_progress 0`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
