package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// A component's run starts only once every component is set up: the
// registry's run mounts the routes that later components (fileop,
// projects, dealer) add in their setups. Starting each run right after its
// own setup lost those routes (404 on /api/v1/fileop, /api/v1/projects).
func TestServeRunsStartAfterEverySetup(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "d.db"))
	require.NoError(t, err)
	defer d.Close()
	_, err = d.Migrate(ctx)
	require.NoError(t, err)
	l := logrus.New()
	l.SetOutput(&bytes.Buffer{})
	store, err := inventory.Load(ctx, d, logrus.NewEntry(l), nil, time.Now())
	require.NoError(t, err)

	saved := serveComponents
	defer func() { serveComponents = saved }()
	sawLate := make(chan bool, 1)
	serveComponents = []serveComponent{
		{name: "late", order: 2, setup: func(_ context.Context, s *serveEnv) (func(context.Context) error, error) {
			time.Sleep(50 * time.Millisecond) // give an early-started run every chance to look too soon
			s.shared["late"] = true
			return nil, nil
		}},
		{name: "early", order: 1, setup: func(_ context.Context, s *serveEnv) (func(context.Context) error, error) {
			return func(ctx context.Context) error {
				_, ok := s.shared["late"]
				sawLate <- ok
				<-ctx.Done()
				return nil
			}, nil
		}},
	}
	runCtx, cancel := context.WithCancel(ctx)
	s := &serveEnv{env: &env{log: l, db: d}, store: store, shared: map[string]any{}, ready: cancel}
	require.NoError(t, runComponents(runCtx, s, logrus.NewEntry(l), time.Now(), 5*time.Second))
	require.True(t, <-sawLate, "the early component's run started before the late one was set up")
}
