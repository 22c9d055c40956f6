package main

import (
	"context"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/inventory"
)

// testAssembly is the start of newServer for tests of one component: the
// configuration checked as serve checks it, the inventory of e.db loaded,
// and the REST API and the scheduler built (components mount their routes
// and register their applications and workers on them), without listeners. e.file is the default configuration unless set.
func testAssembly(t *testing.T, e *env, o serveOptions) (*server, error) {
	t.Helper()
	if e.file.Registry.Listen == "" {
		f, err := loadFileConfig("")
		must(t, err)
		e.file, e.cfg = f, f.Config
	}
	cfg, err := loadServeConfig(e, o)
	if err != nil {
		return nil, err
	}
	store, err := inventory.Load(context.Background(), e.db, e.log.WithField("component", "inventory"), cfg.partitions, time.Now())
	must(t, err)
	s := &server{env: e, cfg: cfg, store: store, ln: &serveListeners{}, log: e.log.WithField("component", "serve")}
	must(t, s.buildRegistry(context.Background()))
	must(t, s.buildScheduler(context.Background()))
	return s, nil
}
