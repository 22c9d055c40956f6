package estimator

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/setest"
	"github.com/dynamo-go/dynamo/srm/client"
)

func quiet() *logrus.Entry {
	l := logrus.New()
	l.SetLevel(logrus.ErrorLevel)
	return l.WithField("component", "estimator")
}

// TestOrderingAgainstSRM: online first, then unknown (an SE that is not
// there), then nearline and missing; learned by srmLs on the embedded SE.
func TestOrderingAgainstSRM(t *testing.T) {
	se := setest.Start(t, setest.Options{})
	online := se.Put(t, "/on", []byte("x"), false)
	both := se.Put(t, "/tape/both", []byte("y"), false) // migrated, disk copy kept
	nearline := se.Put(t, "/tape/near", []byte("z"), true)
	missing := se.Base + "/missing"
	unknown := "srm://127.0.0.1:1/nowhere" // nothing listens there
	c := se.Client(t)
	opts := se.ClientOptions(t)
	opts.Timeout = time.Second
	dead, err := client.New("srm://127.0.0.1:1", opts)
	if err != nil {
		t.Fatal(err)
	}
	src := SRMSource{Resolve: func(s string) (Statter, error) {
		if s == unknown {
			return dead, nil
		}
		return c, nil
	}}
	e, err := New(Config{}, src, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := []string{nearline, unknown, missing, online, both}
	got := e.Sort(ctx, in)
	want := []string{online, both, unknown, nearline, missing}
	if !slices.Equal(got, want) {
		t.Errorf("Sort = %v\nwant %v", got, want)
	}
	for s, p := range map[string]int{online: PriorityCached, both: PriorityCached, unknown: PriorityNeutral,
		nearline: PriorityStaging, missing: PriorityStaging} {
		if got := e.Priority(ctx, s); got != p {
			t.Errorf("Priority(%s) = %d, want %d", s, got, p)
		}
	}
	if got := e.Locality(ctx, both); got != OnlineAndNearline {
		t.Errorf("Locality(both) = %q", got)
	}
}

// countingSource answers from a map and counts the SURLs asked.
type countingSource struct {
	m     map[string]Locality
	asked int
	err   error
}

func (c *countingSource) Localities(_ context.Context, surls []string) (map[string]Locality, error) {
	c.asked += len(surls)
	if c.err != nil {
		return nil, c.err
	}
	out := map[string]Locality{}
	for _, s := range surls {
		if l, ok := c.m[s]; ok {
			out[s] = l
		}
	}
	return out, nil
}

// TestCacheFreshness: answers are cached until the freshness limit, unknown
// ones for the shorter limit; a failing source gives neutral priorities.
func TestCacheFreshness(t *testing.T) {
	src := &countingSource{m: map[string]Locality{"srm://a/1": Nearline}}
	e, _ := New(Config{Freshness: time.Minute, UnknownFreshness: 10 * time.Second}, src, quiet(), nil)
	now := time.Unix(1000, 0)
	e.SetClock(func() time.Time { return now })
	ctx := context.Background()
	e.Priority(ctx, "srm://a/1")
	e.Priority(ctx, "srm://a/2")
	if src.asked != 2 {
		t.Fatalf("asked %d", src.asked)
	}
	src.m["srm://a/1"] = Online // recalled meanwhile
	now = now.Add(30 * time.Second)
	if p := e.Priority(ctx, "srm://a/1"); p != PriorityStaging {
		t.Errorf("within freshness the cached answer holds: %d", p)
	}
	e.Priority(ctx, "srm://a/2") // unknown entry expired: asked again
	if src.asked != 3 {
		t.Errorf("asked %d, want 3", src.asked)
	}
	now = now.Add(31 * time.Second)
	if p := e.Priority(ctx, "srm://a/1"); p != PriorityCached {
		t.Errorf("after freshness the new locality counts: %d", p)
	}
	e.Observe("srm://a/3", Online)
	if p := e.Priority(ctx, "srm://a/3"); p != PriorityCached || src.asked != 4 {
		t.Errorf("observed: %d, asked %d", p, src.asked)
	}
	bad := &countingSource{err: errors.New("down")}
	e2, _ := New(Config{}, bad, quiet(), nil)
	if p := e2.Priority(ctx, "srm://b/1"); p != PriorityNeutral {
		t.Errorf("failing source: %d", p)
	}
}

// TestTapeREST: archiveinfo answers map to localities; a chain falls back
// to the next source for what the API could not answer and for other hosts. The Tape REST
// server is a fake: our SE does not serve the Tape REST API.
func TestTapeREST(t *testing.T) {
	var asked []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/archiveinfo" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		var body struct{ Paths []string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		asked = body.Paths
		_ = json.NewEncoder(w).Encode([]map[string]string{
			{"path": "/d/disk", "locality": "DISK"},
			{"path": "/d/tape", "locality": "TAPE"},
			{"path": "/d/both", "locality": "DISK_AND_TAPE"},
			{"path": "/d/err", "error": "USER ERROR: file does not exist"},
		})
	}))
	defer hs.Close()
	tr := TapeREST{Endpoint: hs.URL + "/api/v1"}
	fallback := &countingSource{m: map[string]Locality{"srm://h/d/err": Online, "srm://other/d/tape": Online}}
	e, _ := New(Config{}, Chain{ByHost{"h": tr}, fallback}, quiet(), nil)
	in := []string{"srm://h/d/tape", "srm://h/srm/managerv2?SFN=/d/disk", "srm://h/d/both", "srm://h/d/err", "srm://other/d/tape"}
	locs := e.Localities(context.Background(), in)
	want := map[string]Locality{in[0]: Nearline, in[1]: Online, in[2]: OnlineAndNearline, in[3]: Online, in[4]: Online}
	for k, v := range want {
		if locs[k] != v {
			t.Errorf("%s: %q, want %q", k, locs[k], v)
		}
	}
	// Only host h goes to archiveinfo; the rest, and what it left
	// unknown, to the fallback.
	if len(asked) != 4 || fallback.asked != 2 {
		t.Errorf("archiveinfo asked %v, fallback asked %d", asked, fallback.asked)
	}
}

// The file-operation daemon ranks its dispatch window with the estimator.
var _ fileop.Prioritizer = (*Estimator)(nil)
