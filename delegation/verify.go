package delegation

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/dynamo-go/dynamo/internal/gridauth"
)

// Verifier authenticates a certificate chain (leaf first, proxies
// allowed) at a time; *gridauth.CAStore implements it.
type Verifier interface {
	Verify(chain []*x509.Certificate, now time.Time) (*gridauth.Identity, error)
}

var _ Verifier = (*gridauth.CAStore)(nil)

// clockSkew is the tolerance on the lifetime cap for the signer's clock.
const clockSkew = 5 * time.Minute

// maxChain bounds the certificates accepted in one upload.
const maxChain = 10

// verifyChain parses and checks an uploaded proxy chain: the first
// certificate is an RFC 3820 proxy of the pending key, the whole chain
// verifies (gridauth: each proxy's ProxyCertInfo, subject and signature,
// the end-entity certificate against the CA directory) to exactly the DN
// that uploaded it, every proxy lives within its issuer, and the new one
// no longer than maxLife. It trusts nothing it did not check.
func verifyChain(chainPEM []byte, key *rsa.PrivateKey, dn string, v Verifier, now time.Time, maxLife time.Duration) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	rest := chainPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			// The private key of the new proxy is the server's; the user's
			// own key must never travel.
			return nil, fmt.Errorf("%w: the upload holds a %s block; send only certificates (the new proxy first, then your chain)", ErrBadProxy, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrBadProxy, len(chain)+1, err)
		}
		chain = append(chain, c)
		if len(chain) > maxChain {
			return nil, fmt.Errorf("%w: more than %d certificates", ErrBadProxy, maxChain)
		}
	}
	if len(chain) < 2 {
		return nil, fmt.Errorf("%w: want PEM certificates: the new proxy, then the chain that signed it (got %d)", ErrBadProxy, len(chain))
	}
	leaf := chain[0]
	pub, ok := leaf.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("%w: the first certificate is not for the key of the pending request (sign the CSR of this delegation id)", ErrBadProxy)
	}
	if !hasProxyCertInfo(leaf) {
		return nil, fmt.Errorf("%w: the first certificate is not an RFC 3820 proxy (no proxyCertInfo extension)", ErrBadProxy)
	}
	id, err := v.Verify(chain, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadProxy, err)
	}
	if id.DN != dn {
		return nil, fmt.Errorf("%w: the proxy chains to %s, not to you (%s)", ErrBadProxy, id.DN, dn)
	}
	// A proxy must not outlive what signed it (gridauth checks each is
	// valid now, not that they nest).
	for i := 0; i < id.Proxies; i++ {
		if chain[i].NotAfter.After(chain[i+1].NotAfter) {
			return nil, fmt.Errorf("%w: certificate %d is valid until %s, after its issuer (%s)", ErrBadProxy, i+1,
				chain[i].NotAfter.UTC().Format(time.RFC3339), chain[i+1].NotAfter.UTC().Format(time.RFC3339))
		}
	}
	if life := leaf.NotAfter.Sub(now); life > maxLife+clockSkew {
		return nil, fmt.Errorf("%w: the proxy lives %v, more than the %v this server accepts (max_lifetime); sign it for at most that",
			ErrBadProxy, life.Round(time.Second), maxLife)
	}
	return chain, nil
}

func hasProxyCertInfo(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(gridauth.OIDProxyCertInfo) {
			return true
		}
	}
	return false
}
