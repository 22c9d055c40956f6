package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/console"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry"
)

// ConsoleOptions say which page to load how often, over which inventory.
type ConsoleOptions struct {
	// Load loads the inventory (timed); the database is only read.
	Load       func(context.Context) (*inventory.Store, error)
	Path       string // page to load
	Requests   int    // measured page loads, one after the other
	Warmup     int    // unmeasured page loads first
	PolicyFile string // Detox policy whose watermarks the page shows ("": none)
	Partition  string // the policy's partition
}

// Console serves the console on loopback over d's inventory as `dynamo
// serve` mounts it (with the file-operation queue of d and, with a
// policy, a Detox partition for the watermarks) and times sequential
// loads of one page.
func Console(ctx context.Context, d *db.DB, o ConsoleOptions, log *logrus.Entry) (map[string]any, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t0 := time.Now()
	store, err := o.Load(ctx)
	if err != nil {
		return nil, err
	}
	load := time.Since(t0)
	cfg := registry.DefaultConfig()
	srv, err := registry.New(registry.Options{Config: cfg, DB: d, Log: log.WithField("component", "registry"), Inventory: store})
	if err != nil {
		return nil, err
	}
	src := console.Sources{Inventory: store, Transfers: &fileop.API{DB: d}, Requests: srv.Store(), Detox: detox.NewHistory(d)}
	if o.PolicyFile != "" {
		dc := detox.DefaultConfig()
		dc.Partitions = map[string]detox.PartitionConfig{o.Partition: {Policy: o.PolicyFile}}
		r := &detox.Runner{Store: store, Config: dc}
		if err := r.Sources.FillEmpty(AllProducers()...); err != nil {
			return nil, err
		}
		if _, err := r.LoadPolicy(o.Partition, ""); err != nil {
			return nil, InputError{err}
		}
		src.Watermarks = r
	}
	c, err := console.New(console.Options{Sources: src, Access: srv, Log: log.WithField("component", "console")})
	if err != nil {
		return nil, err
	}
	srv.MountPages("/", registry.Permission{Write: registry.Need{Role: registry.RoleOperator, Target: registry.TargetRegistry}}, c.RenderError, c.Routes)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String() + o.Path
	get := func() (time.Duration, int, error) {
		start := time.Now()
		resp, err := http.Get(url)
		if err != nil {
			return 0, 0, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", o.Path, resp.Status)
		}
		return time.Since(start), int(n), err
	}
	for range o.Warmup {
		if _, _, err := get(); err != nil {
			return nil, err
		}
	}
	lat := make([]float64, 0, o.Requests)
	size := 0
	for range o.Requests {
		dur, n, err := get()
		if err != nil {
			return nil, err
		}
		lat = append(lat, float64(dur)/float64(time.Millisecond))
		size = n
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	counts := store.Snapshot().Counts()
	return map[string]any{"db": d.Name, "path": o.Path, "sites": counts.Sites, "datasets": counts.Datasets,
		"block_replicas": counts.BlockReplicas, "load_seconds": load.Seconds(), "requests": len(lat), "page_bytes": size,
		"p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": lat[len(lat)-1], "watermarks": o.PolicyFile != ""}, nil
}
