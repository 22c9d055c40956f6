package srm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/dynamo-go/dynamo/internal/gridauth"
)

// handshakeTimeout bounds the TLS handshake plus the GSI flag byte, so a
// silent client cannot hold a connection goroutine forever.
const handshakeTimeout = 20 * time.Second

// ErrDelegation is returned when a client asks for GSI delegation ('D').
var ErrDelegation = errors.New("GSI delegation requested: not supported")

// gsiListener accepts TLS connections speaking "httpg": after the handshake
// the client sends one byte, '0' (no delegation), before HTTP. Accept
// returns immediately; the handshake, authentication and flag byte happen
// on the connection's first Read, in the connection's own goroutine.
type gsiListener struct {
	net.Listener
	tls  *tls.Config
	cas  *gridauth.CAStore
	flag bool // expect the GSI flag byte (SRM port) or not (data port)
	// certOptional admits clients without a certificate (the data port:
	// bearer tokens, anonymous reads); a certificate presented is still
	// verified, and a bad one still fails the connection.
	certOptional bool
	// slots bounds open connections: Accept waits for a free slot, so a
	// flood of clients queues in the kernel backlog instead of growing
	// goroutines and memory without bound.
	slots chan struct{}
}

func (l *gsiListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &gsiConn{Conn: tls.Server(c, l.tls), l: l}, nil
}

// gsiConn is one client connection. Identity is valid once a request has
// been read (the HTTP server reads before it calls the handler).
type gsiConn struct {
	*tls.Conn
	l    *gsiListener
	once sync.Once
	err  error
	id   *gridauth.Identity
	// pending holds a first byte read while looking for the flag that
	// turned out to be data (a client that sends no flag).
	pending   []byte
	closeOnce sync.Once
}

// Close closes the connection and frees its slot.
func (c *gsiConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { <-c.l.slots })
	return err
}

func (c *gsiConn) init() {
	_ = c.Conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer func() { _ = c.Conn.SetDeadline(time.Time{}) }()
	if err := c.Conn.Handshake(); err != nil {
		c.err = fmt.Errorf("TLS handshake: %w", err)
		return
	}
	chain := c.Conn.ConnectionState().PeerCertificates
	if len(chain) == 0 && c.l.certOptional {
		return
	}
	id, err := c.l.cas.Verify(chain, time.Now())
	if err != nil {
		c.err = err
		return
	}
	c.id = id
	if !c.l.flag {
		return
	}
	var b [1]byte
	if _, err := c.Conn.Read(b[:]); err != nil {
		c.err = err
		return
	}
	switch b[0] {
	case '0':
	case 'D':
		c.err = ErrDelegation
	default:
		c.pending = []byte{b[0]}
	}
}

func (c *gsiConn) Read(p []byte) (int, error) {
	c.once.Do(c.init)
	if c.err != nil {
		return 0, c.err
	}
	if len(c.pending) > 0 && len(p) > 0 {
		p[0] = c.pending[0]
		c.pending = nil
		return 1, nil
	}
	return c.Conn.Read(p)
}

func (c *gsiConn) Write(p []byte) (int, error) {
	c.once.Do(c.init)
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Write(p)
}

type ctxKey int

const connKey ctxKey = 0

// connContext puts the connection in the request context so handlers can
// reach the authenticated identity (r.TLS is nil behind a wrapped conn).
func connContext(ctx context.Context, c net.Conn) context.Context {
	if gc, ok := c.(*gsiConn); ok {
		return context.WithValue(ctx, connKey, gc)
	}
	return ctx
}

// identityFrom returns the authenticated client of a request context.
func identityFrom(ctx context.Context) *gridauth.Identity {
	if gc, ok := ctx.Value(connKey).(*gsiConn); ok {
		return gc.id
	}
	return nil
}

// serverTLS builds the TLS configuration of both endpoints. Client
// certificates are required but verified by gridauth (proxies), not by
// crypto/tls. Session tickets stay at Go's default of one per handshake:
// gfal2's GSI stack hangs with none and breaks with two (INTEROP §3.1).
func serverTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
}
