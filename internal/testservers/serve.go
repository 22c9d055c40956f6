package testservers

import (
	"context"
	"strings"
	"testing"
)

// Server is an in-process server: Run serves until ctx ends, Ready is
// closed once it accepts requests.
type Server interface {
	Run(ctx context.Context) error
	Ready() <-chan struct{}
}

// Serve runs s until the test ends: it returns once s is ready (failing
// the test if Run returns first) and, at cleanup, stops s and reports an
// error Run returned.
func Serve(t testing.TB, s Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server Run: %v", err)
		}
	})
}

// LogWriter sends what is written to it (a logger's output) to t.Log.
type LogWriter struct{ T testing.TB }

func (w LogWriter) Write(p []byte) (int, error) {
	w.T.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
