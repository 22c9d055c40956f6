package driver

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sirupsen/logrus"
)

// Options are the settings shared by all drivers: credentials, TLS trust and
// timeouts. Driver-specific knobs live in the driver packages.
type Options struct {
	// CACertDir is a directory of trusted CA certificates in PEM form, such as
	// an X509_CERT_DIR hashed directory (every regular file that parses as PEM
	// is loaded; .signing_policy and other files are ignored).
	CACertDir string `yaml:"ca_cert_dir"`
	// CABundle is a PEM file of trusted CA certificates.
	CABundle string `yaml:"ca_bundle"`
	// Proxy is a PEM file with a certificate chain and its private key, as made
	// by grid-proxy-init/voms-proxy-init (X509_USER_PROXY). An EEC cert and key
	// concatenated in one file work too.
	Proxy string `yaml:"proxy"`
	// Cert and Key are a client certificate and key in separate PEM files
	// (X509_USER_CERT/X509_USER_KEY). Used when Proxy is empty.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// Insecure skips server certificate verification. For tests only.
	Insecure bool `yaml:"insecure"`
	// OpTimeout bounds each metadata operation (stat, mkdir, remove, rmdir,
	// rename, checksum, space) when ctx has no earlier deadline, and the wait
	// for an HTTP response header. Data operations (Open, Put, CopyFrom) and
	// List, which streams and may run long on huge directories, are bounded
	// only by ctx. Default 2m.
	OpTimeout time.Duration `yaml:"op_timeout"`
	// Log receives driver diagnostics; nil discards them.
	Log *logrus.Entry `yaml:"-"`
}

// DefaultOpTimeout is OpTimeout's default.
const DefaultOpTimeout = 2 * time.Minute

// ApplyDefaults fills zero fields.
func (o *Options) ApplyDefaults() {
	if o.OpTimeout == 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(discard{})
		o.Log = logrus.NewEntry(l)
	}
}

// Validate checks that named files exist and the settings are coherent.
func (o Options) Validate() error {
	var errs []error
	check := func(field, p string, dir bool) {
		if p == "" {
			return
		}
		st, err := os.Stat(p)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		case st.IsDir() != dir:
			errs = append(errs, fmt.Errorf("%s: %s: want a %s", field, p, map[bool]string{true: "directory", false: "file"}[dir]))
		}
	}
	check("ca_cert_dir", o.CACertDir, true)
	check("ca_bundle", o.CABundle, false)
	check("proxy", o.Proxy, false)
	check("cert", o.Cert, false)
	check("key", o.Key, false)
	if (o.Cert == "") != (o.Key == "") {
		errs = append(errs, errors.New("cert and key must be given together"))
	}
	if o.OpTimeout < 0 {
		errs = append(errs, fmt.Errorf("op_timeout: %v is negative", o.OpTimeout))
	}
	return errors.Join(errs...)
}

// OptionsFromEnv returns Options filled from the grid environment variables
// X509_CERT_DIR, X509_USER_PROXY, X509_USER_CERT and X509_USER_KEY.
func OptionsFromEnv() Options {
	return Options{
		CACertDir: os.Getenv("X509_CERT_DIR"),
		Proxy:     os.Getenv("X509_USER_PROXY"),
		Cert:      os.Getenv("X509_USER_CERT"),
		Key:       os.Getenv("X509_USER_KEY"),
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
