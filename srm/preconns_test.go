package srm

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/internal/testservers"
)

// A client's parked connection that never sent a request does not hold up
// shutdown: net/http alone waits 5 s for such connections.
func TestShutdownDoesNotWaitForSilentConnections(t *testing.T) {
	pki := makePKI(t)
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := QuickStart(root, "127.0.0.1:0", "127.0.0.1:0",
		filepath.Join(pki, "hostcert.pem"), filepath.Join(pki, "hostkey.pem"), filepath.Join(pki, "certificates"))
	if err != nil {
		t.Fatal(err)
	}
	l := logrus.New()
	l.SetOutput(testservers.LogWriter{T: t})
	s, err := New(cfg, testdb.SQLite(t), l.WithField("component", "srm"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	for _, a := range []net.Addr{s.SRMAddr(), s.DataAddr()} {
		c, err := net.Dial("tcp", a.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(preRequestGrace + 200*time.Millisecond) // parked, like a transport's spare connection
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if took := time.Since(start); took > 4*time.Second {
			t.Fatalf("shutdown took %s", took)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("shutdown waited for connections that never sent a request")
	}
}
