package srm

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// preRequestGrace is how long a connection may stay silent before its
// first request and still be waited for by a shutdown. A live client sends
// its request right after the handshake; one silent for longer is a spare
// connection its transport dialed and parked.
const preRequestGrace = time.Second

// preRequestConns tracks connections that have not sent a request yet
// (http.StateNew). HTTP transports dial spare connections they may never
// use, and net/http's Shutdown waits up to 5 s for such a connection before
// treating it as idle: a stopping SE would hang that long on a client's
// parked connection. Run closes the stale ones while it shuts down.
type preRequestConns struct {
	mu sync.Mutex
	m  map[net.Conn]time.Time
}

// track is the http.Server ConnState hook.
func (p *preRequestConns) track(c net.Conn, st http.ConnState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st == http.StateNew {
		if p.m == nil {
			p.m = map[net.Conn]time.Time{}
		}
		p.m[c] = time.Now()
		return
	}
	delete(p.m, c)
}

// closeStale closes connections silent since before now-age.
func (p *preRequestConns) closeStale(age time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, since := range p.m {
		if time.Since(since) > age {
			c.Close()
			delete(p.m, c)
		}
	}
}

// reapWhile closes stale pre-request connections every tick until done is
// closed, then returns; Run calls it around the servers' Shutdown.
func (p *preRequestConns) reapWhile(done <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		p.closeStale(preRequestGrace)
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}
