package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	regbench "github.com/dynamo-go/dynamo/registry/bench"
)

// lagFakes are a holder and a standby answering the routes measureReads
// uses. The standby shows a site written on the holder only lagged after
// the write, so the lag sample outlasts the read window.
type lagFakes struct {
	mu      sync.Mutex
	written map[string]time.Time
	lagged  time.Duration
}

func (f *lagFakes) handler(holder bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/v1/apps":
			fmt.Fprintf(w, `{"data": {"leader": %t, "lease": {"holder": "h", "address": "h:1"}, "inventory_seq": 1}}`, holder)
		case r.URL.Path == "/api/v1/injections/sync" && !holder:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"errorType": "not_writer", "holder_address": "h:1"}`)
		case r.URL.Path == "/api/v1/injections/sync":
			var body struct {
				Sites []struct{ Name string } `json:"sites"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Sites) != 1 {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			f.mu.Lock()
			f.written[body.Sites[0].Name] = time.Now()
			f.mu.Unlock()
		case strings.HasPrefix(r.URL.Path, "/api/v1/sites/"):
			f.mu.Lock()
			at, ok := f.written[strings.TrimPrefix(r.URL.Path, "/api/v1/sites/")]
			f.mu.Unlock()
			if !ok || !holder && time.Since(at) < f.lagged {
				http.NotFound(w, r)
			}
		}
	})
}

// The read figures cover the read window, not the wait of a lag sample
// that a standby shows only after the readers stopped: a slow standby
// must not dilute the throughput and the servers' cores over time in
// which nobody read.
func TestReadScaleReadWindowExcludesLagTail(t *testing.T) {
	const duration = time.Second
	f := &lagFakes{written: map[string]time.Time{}, lagged: 2 * duration}
	self, err := os.FindProcess(os.Getpid())
	require.NoError(t, err)
	var procs []*serveProc
	for _, holder := range []bool{true, false} {
		srv := httptest.NewServer(f.handler(holder))
		t.Cleanup(srv.Close)
		// Both "servers" are this process: its CPU stands in for theirs.
		procs = append(procs, &serveProc{cmd: &exec.Cmd{Process: self}, base: srv.URL})
	}
	o := ReadScaleOptions{Duration: duration, Workers: 2, LagSamples: 1}
	row, err := measureReads(context.Background(), o, procs, []regbench.Target{{Route: "r", Path: "/api/v1/datasets/x"}})
	require.NoError(t, err)
	require.Zero(t, row.Errors, row.FirstError)
	require.Equal(t, 1, row.LagSamples)
	// The sample was written half-way (duration/2) and shown about two
	// durations later (less the holder's answer), so it ended about 2.5
	// durations after the start: a window that ran until then would be
	// that long.
	require.Greater(t, row.LagMax, 1.8*float64(duration.Milliseconds()))
	require.Less(t, row.ReadSeconds, 1.5*duration.Seconds(), "the read window ran on until the lag sample ended")
	require.InDelta(t, float64(row.Requests)/row.ReadSeconds, row.Throughput, 1e-6)
}
