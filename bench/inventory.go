package bench

import (
	"context"
	"runtime"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/inventory/synth"
	restbench "github.com/dynamo-go/dynamo/registry/bench"
)

// Generate writes the synthetic inventory of spec into d (which must be
// empty), logging progress, and reports what it wrote.
func Generate(ctx context.Context, d *db.DB, spec synth.Spec, log *logrus.Entry) (map[string]any, error) {
	log = log.WithField("component", "bench")
	start := time.Now()
	st, err := synth.Generate(ctx, d, spec, func(s synth.Stats) {
		log.WithField("datasets", s.Datasets).WithField("blocks", s.Blocks).WithField("block_replicas", s.BlockReplicas).
			WithField("elapsed", time.Since(start).Round(time.Second).String()).Info("generating")
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"db": d.Name, "sites": st.Sites, "groups": st.Groups, "datasets": st.Datasets, "blocks": st.Blocks,
		"dataset_replicas": st.DatasetReplicas, "block_replicas": st.BlockReplicas, "bytes": st.Bytes,
		"seconds": time.Since(start).Seconds(),
	}, nil
}

// Inventory times loading d's inventory against streaming its rows raw
// (the floor any loader meets) and measures the heap the loaded store
// holds per object.
func Inventory(ctx context.Context, d *db.DB, log *logrus.Entry, cpuProfile string) (map[string]any, error) {
	// Stream once untimed so both timed runs find the same warm
	// database caches, then time the raw stream and the load.
	if err := inventory.StreamOnly(ctx, d); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := inventory.StreamOnly(ctx, d); err != nil {
		return nil, err
	}
	raw := time.Since(start).Seconds()

	runtime.GC()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop, err := startCPUProfile(cpuProfile)
	if err != nil {
		return nil, err
	}
	defer stop()
	start = time.Now()
	s, err := inventory.Load(ctx, d, log.WithField("component", "inventory"), nil, time.Now())
	if err != nil {
		return nil, err
	}
	load := time.Since(start).Seconds()
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	c := s.Snapshot().Counts()
	objects := c.Sites + c.Datasets + c.Blocks + c.BlockReplicas
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	out := map[string]any{
		"db": d.Name, "objects": objects, "sites": c.Sites, "datasets": c.Datasets, "blocks": c.Blocks,
		"dataset_replicas": c.DatasetReplicas, "block_replicas": c.BlockReplicas,
		"heap_bytes": heap, "bytes_per_object": float64(heap) / float64(max(objects, 1)),
		"load_seconds": load, "raw_stream_seconds": raw, "load_over_raw": load / raw,
	}
	runtime.KeepAlive(s)
	return out, nil
}

// API serves the loaded store on loopback and drives the REST read mix
// at a fixed rate (see registry/bench), reporting it with the store's size.
func API(ctx context.Context, d *db.DB, store *inventory.Store, log *logrus.Entry, o restbench.Options) (map[string]any, error) {
	res, err := restbench.API(ctx, store, log.WithField("component", "registry"), o)
	if err != nil {
		return nil, err
	}
	c := store.Snapshot().Counts()
	return map[string]any{"db": d.Name, "datasets": c.Datasets, "blocks": c.Blocks, "block_replicas": c.BlockReplicas, "result": res}, nil
}
