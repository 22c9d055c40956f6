package driver

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// TLSConfig builds the client TLS configuration from the CA and credential
// options. With neither CACertDir nor CABundle set, the system pool is used.
// Proxy chains are sent as they are: RFC 3820 proxies need no special support
// on the client side, only on the server.
func (o Options) TLSConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure} //nolint:gosec // Insecure is an explicit test-only option
	if o.CACertDir != "" || o.CABundle != "" {
		pool := x509.NewCertPool()
		n := 0
		if o.CABundle != "" {
			k, err := addPEMFile(pool, o.CABundle)
			if err != nil {
				return nil, fmt.Errorf("ca_bundle: %w", err)
			}
			n += k
		}
		if o.CACertDir != "" {
			ents, err := os.ReadDir(o.CACertDir)
			if err != nil {
				return nil, fmt.Errorf("ca_cert_dir: %w", err)
			}
			for _, e := range ents {
				// Hash links (*.0) and the files they point to hold the same
				// CA; the pool deduplicates, and non-PEM files add nothing.
				p := filepath.Join(o.CACertDir, e.Name())
				if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
					continue
				}
				k, _ := addPEMFile(pool, p)
				n += k
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("no CA certificates found in ca_cert_dir %q / ca_bundle %q", o.CACertDir, o.CABundle)
		}
		cfg.RootCAs = pool
	}
	certFile, keyFile := o.Cert, o.Key
	if o.Proxy != "" {
		certFile, keyFile = o.Proxy, o.Proxy
	}
	if certFile != "" {
		// tls.LoadX509KeyPair skips non-certificate blocks in the cert file
		// and picks the key block from the key file, so one proxy file serves
		// as both: leaf proxy cert, its key, then the issuing chain.
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client credential %s: %w", certFile, err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

func addPEMFile(pool *x509.CertPool, path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return n, fmt.Errorf("%s: %w", path, err)
		}
		pool.AddCert(c)
		n++
	}
	return n, nil
}
