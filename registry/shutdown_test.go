package registry

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testutil"
)

// TestGracefulShutdown: cancelling Serve's context lets a request in
// flight finish, then refuses new connections, and Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg := DefaultConfig()
	srv, err := New(Options{Config: cfg, DB: testdb.SQLite(t), Log: log.WithField("component", "registry")})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var addr string // set before Serve, which runs the handler
	srv.Mount("/api/v1/slow", Permission{}, func(rg *gin.RouterGroup) {
		rg.GET("", func(c *gin.Context) {
			close(started)
			// Still in flight once the shutdown has begun, which it has
			// when the listener refuses new connections.
			testutil.Poll(time.Minute, func() bool {
				conn, err := net.Dial("tcp", addr)
				if err == nil {
					conn.Close()
				}
				return err != nil
			})
			c.String(200, "done")
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/api/v1/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	cancel()
	if b := <-got; b != "done" {
		t.Fatalf("in-flight request: %q", b)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("still accepting connections after shutdown")
	}
}
