package stager

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"sync"
	"time"

	"github.com/dynamo-go/dynamo/delegation"
	"github.com/dynamo-go/dynamo/srm/client"
)

// DelegatedAccess gives each user SE access with the proxy they delegated
// (package delegation): SRM clients and an HTTPS mover presenting it. The
// record is looked up on every use, so an expired delegation is never
// used, even over a kept-alive connection; the clients are made again
// when the user delegates anew. Safe for concurrent use.
type DelegatedAccess struct {
	store *delegation.Store
	opts  client.Options
	roots *x509.CertPool

	mu     sync.Mutex
	byUser map[string]delegatedClients
}

type delegatedClients struct {
	id      string
	expires time.Time
	pool    *ClientPool
	mover   HTTPMover
}

// NewDelegatedAccess serves users from store; opts are the SRM client
// options besides the credential (CA directory, timeout), roots verify
// the SEs' data endpoints for copies.
func NewDelegatedAccess(store *delegation.Store, opts client.Options, roots *x509.CertPool) *DelegatedAccess {
	return &DelegatedAccess{store: store, opts: opts, roots: roots, byUser: map[string]delegatedClients{}}
}

// For implements UserAccess.
func (d *DelegatedAccess) For(user string) (Access, error) {
	info, err := d.store.Lookup(user)
	d.mu.Lock()
	defer d.mu.Unlock()
	old, cached := d.byUser[user]
	if err != nil {
		if cached {
			delete(d.byUser, user)
			old.close()
		}
		return Access{}, err
	}
	if cached && old.id == info.ID && old.expires.Equal(info.Expires) {
		return old.access(), nil
	}
	cert, err := d.store.Load(info)
	if err != nil {
		return Access{}, err
	}
	opts := d.opts
	opts.Certificate = cert
	c := delegatedClients{id: info.ID, expires: info.Expires, pool: NewClientPool(opts),
		mover: HTTPMover{Client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{cert}, RootCAs: d.roots, MinVersion: tls.VersionTLS12}, IdleConnTimeout: 90 * time.Second}}}}
	if cached {
		old.close()
	}
	d.byUser[user] = c
	return c.access(), nil
}

func (c delegatedClients) access() Access { return Access{Resolver: c.pool.Resolve, Mover: c.mover} }

// close drops the kept-alive connections made with a credential no longer
// used.
func (c delegatedClients) close() {
	c.pool.CloseIdle()
	c.mover.Client.CloseIdleConnections()
}

var _ UserAccess = (*DelegatedAccess)(nil).For
