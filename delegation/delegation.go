// Package delegation keeps the short-lived RFC 3820 proxies that users
// delegate to the server, so that the stager can act for them (the SAM
// security model: the station stages and removes data as its own
// principal, but a user's get is prepared at the SE under that user's own
// identity).
//
// The exchange follows GridSite's delegation service: the server makes a
// key pair and hands out a certificate signing request for it; the user
// signs it with their own certificate or proxy, making a new proxy whose
// private key never left the server; the server keeps that proxy only
// after verifying that it chains to the very identity that uploaded it,
// and only as long as it lives.
//
// Everything is kept as files in one directory of mode 0700, each file
// of mode 0600, written through a temporary file, fsync and rename:
//
//	<id>.req   the private key of a pending request (PendingTTL at most)
//	<id>.pem   the delegated proxy: its chain, then its key
//	<id>.json  who delegated and until when (kept for Retention after
//	           expiry, so that a failed request can say why)
//
// The id is derived from the delegator's DN, so each DN has one
// delegation, which a new one replaces.
package delegation

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/internal/apierr"
)

// Errors of the store, wrapped with details; test with errors.Is. Each is
// also of an apierr kind, which decides the REST status.
var (
	// ErrNotFound: no delegation, or no pending request, with that id.
	ErrNotFound = apierr.New(apierr.ErrNotFound, "delegation: not found")
	// ErrForbidden: the id belongs to another identity, or the caller has
	// no certificate identity.
	ErrForbidden = apierr.New(apierr.ErrForbidden, "delegation: not yours")
	// ErrBadProxy: the uploaded proxy was refused (the message says why).
	ErrBadProxy = apierr.New(apierr.ErrBadRequest, "delegation: proxy refused")
	// ErrNoCredential: the user has no usable delegated credential (none,
	// or expired); the message tells them what to do.
	ErrNoCredential = errors.New("delegation: no usable delegated credential")
	// ErrBadConfig: the configuration is invalid.
	ErrBadConfig = errors.New("delegation: bad configuration")
)

// Config is the stager.delegation section.
type Config struct {
	// Dir holds the delegated credentials (created 0700; an existing one
	// must be a directory of this process's user, not readable by others).
	// Several servers sharing the delegations need a shared Dir; empty
	// means a private temporary directory removed at exit, so that users
	// delegate again after a restart.
	Dir string `yaml:"dir"`
	// MaxLifetime caps the lifetime of a delegated proxy: a longer one is
	// refused. Default 12h.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// SweepInterval is how often the lease holder removes expired
	// credentials; default 1m.
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// PendingTTL is how long the key of a requested but not yet completed
// delegation is kept.
const PendingTTL = 10 * time.Minute

// Retention is how long the record of an expired delegation (DN and
// expiry, never the key) is kept to explain failures.
const Retention = 7 * 24 * time.Hour

// ApplyDefaults fills zero values.
func (c *Config) ApplyDefaults() {
	if c.MaxLifetime == 0 {
		c.MaxLifetime = 12 * time.Hour
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Minute
	}
}

// Validate reports the first bad value, naming its key.
func (c *Config) Validate() error {
	switch {
	case c.MaxLifetime < time.Minute:
		return fmt.Errorf("%w: delegation.max_lifetime %v must be at least 1m", ErrBadConfig, c.MaxLifetime)
	case c.SweepInterval <= 0:
		return fmt.Errorf("%w: delegation.sweep_interval %v must be positive", ErrBadConfig, c.SweepInterval)
	}
	return nil
}

// ID is the delegation id of a DN: the first 16 hex digits of its
// SHA-256, as GridSite derives ids from the delegator's identity.
func ID(dn string) string {
	sum := sha256.Sum256([]byte(dn))
	return hex.EncodeToString(sum[:8])
}

// Info describes a delegation; it never holds the key.
type Info struct {
	ID string `json:"delegation_id"`
	DN string `json:"dn"`
	// User is the name the delegator authenticated as (the owner of their
	// stager requests): their user name, else their DN.
	User    string    `json:"user"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// Expired reports whether the delegation has expired at now.
func (i Info) Expired(now time.Time) bool { return !now.Before(i.Expires) }
