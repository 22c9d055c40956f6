package bench

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

const doc = `{"sites": [{"name": "T2_A", "storage_type": "disk", "status": "ready", "quotas": {"Default": 1000}}],
 "groups": [{"name": "G", "olevel": "dataset"}],
 "datasets": [{"name": "/P/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "b1", "size": 10, "num_files": 1}]},
              {"name": "/Q/R-v1/AOD", "status": "valid", "data_type": "mc", "blocks": [{"name": "b1", "size": 10, "num_files": 1}]}],
 "dataset_replicas": [{"dataset": "/P/R-v1/AOD", "site": "T2_A", "group": "G", "growing": false}]}`

// TestAPIHarness runs the harness briefly on a tiny inventory: every
// request of the mix must succeed and be counted.
func TestAPIHarness(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	ctx := context.Background()
	st, err := inventory.Load(ctx, testdb.SQLite(t), log.WithField("component", "inventory"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := inventory.DecodeInjectDoc(strings.NewReader(doc))
	if _, err := st.Inject(ctx, time.Now(), d); err != nil {
		t.Fatal(err)
	}
	res, err := API(ctx, st, log.WithField("component", "registry"), Options{Rate: 200, Duration: time.Second, Warmup: time.Millisecond * 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.All.Errors != 0 || res.All.Requests < 150 || len(res.Routes) < 5 {
		t.Fatalf("result: %+v", res)
	}
}
