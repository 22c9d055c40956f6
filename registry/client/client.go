// Package client is a small HTTP client for dynamo's REST API (package
// registry), used by the operator CLI. It authenticates with an X.509
// certificate or RFC 3820 proxy, or a bearer token, and verifies the
// server against a grid CA directory or the system roots.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/registry"
)

// Options say where the server is and how to authenticate. Empty fields
// fall back to the environment (see FromEnv).
type Options struct {
	Server string // https://host:port or http://127.0.0.1:8080
	Token  string // bearer token (static or JWT)
	// TokenFile holds the token when Token is empty (read by New).
	TokenFile string
	Cert      string // PEM client certificate (EEC)
	Key       string // its key
	Proxy     string // RFC 3820 proxy file (certificate, key, chain in one PEM)
	CADir     string // grid CA directory to verify the server; system roots when empty
	Timeout   time.Duration
}

// FromEnv fills empty options from DYNAMO_SERVER, DYNAMO_TOKEN(_FILE),
// X509_USER_PROXY, X509_USER_CERT/X509_USER_KEY and X509_CERT_DIR
// (falling back to /etc/grid-security/certificates when it exists).
func (o Options) FromEnv() Options {
	set := func(dst *string, env string) {
		if *dst == "" {
			*dst = os.Getenv(env)
		}
	}
	set(&o.Server, "DYNAMO_SERVER")
	set(&o.Token, "DYNAMO_TOKEN")
	set(&o.TokenFile, "DYNAMO_TOKEN_FILE")
	if o.Cert == "" && o.Proxy == "" {
		set(&o.Proxy, "X509_USER_PROXY")
		if o.Proxy == "" {
			set(&o.Cert, "X509_USER_CERT")
			set(&o.Key, "X509_USER_KEY")
		}
	}
	set(&o.CADir, "X509_CERT_DIR")
	if o.CADir == "" {
		if st, err := os.Stat("/etc/grid-security/certificates"); err == nil && st.IsDir() {
			o.CADir = "/etc/grid-security/certificates"
		}
	}
	return o
}

// Or fills the options still empty from fallback (the configuration file).
// Credentials are taken as a whole: a token or certificate given by flags
// or environment is never mixed with one from the file.
func (o Options) Or(fb Options) Options {
	if o.Server == "" {
		o.Server = fb.Server
	}
	if o.CADir == "" {
		o.CADir = fb.CADir
	}
	if o.Token == "" && o.TokenFile == "" && o.Cert == "" && o.Proxy == "" {
		o.Token, o.TokenFile, o.Cert, o.Key, o.Proxy = fb.Token, fb.TokenFile, fb.Cert, fb.Key, fb.Proxy
	}
	return o
}

// Client calls the API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// New builds a client; it reads credentials now, so a missing file is an
// error here rather than at the first call.
func New(o Options) (*Client, error) {
	if o.Server == "" {
		return nil, errors.New("no server: give --server or set DYNAMO_SERVER")
	}
	u, err := url.Parse(strings.TrimRight(o.Server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want http(s)://host:port", o.Server)
	}
	if o.Token == "" && o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		o.Token = strings.TrimSpace(string(b))
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case o.Proxy != "":
		c, err := tls.LoadX509KeyPair(o.Proxy, o.Proxy)
		if err != nil {
			return nil, fmt.Errorf("proxy %s: %w", o.Proxy, err)
		}
		tc.Certificates = []tls.Certificate{c}
	case o.Cert != "":
		key := o.Key
		if key == "" {
			key = o.Cert
		}
		c, err := tls.LoadX509KeyPair(o.Cert, key)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", o.Cert, err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	if o.CADir != "" {
		pool, err := loadCADir(o.CADir)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	return &Client{base: u, token: o.Token, hc: &http.Client{Timeout: o.Timeout, Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}}, nil
}

func loadCADir(dir string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("CA dir: %w", err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".pem") || (len(e.Name()) > 9 && e.Name()[8] == '.' && !strings.Contains(e.Name(), "_") && !strings.HasSuffix(e.Name(), "policy") && !strings.HasSuffix(e.Name(), "namespaces")) {
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && pool.AppendCertsFromPEM(b) {
				n++
			}
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("CA dir %s: no CA certificates", dir)
	}
	return pool, nil
}

// Error is a non-2xx answer.
type Error struct {
	Code int
	Body registry.ErrorBody
}

func (e *Error) Error() string {
	if e.Body.Error != "" {
		return fmt.Sprintf("server: %s (HTTP %d)", e.Body.Error, e.Code)
	}
	return fmt.Sprintf("server: HTTP %d %s", e.Code, http.StatusText(e.Code))
}

func (c *Client) request(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	u := *c.base
	u.RawPath = c.base.Path + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = q.Encode()
	var rd io.Reader
	ctype := "application/json"
	if raw, ok := body.(Raw); ok {
		rd, ctype = bytes.NewReader(raw.Data), raw.ContentType
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		e := &Error{Code: resp.StatusCode}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_ = json.Unmarshal(b, &e.Body)
		return nil, e
	}
	return resp, nil
}

// Raw is a request body sent as it is (a PEM upload), not as JSON.
type Raw struct {
	ContentType string
	Data        []byte
}

// Send sends a request and returns the response of a 2xx answer, whose
// body the caller must close; any other status is an *Error. For routes
// whose answer is not one JSON document (a 202 with Retry-After, text).
func (c *Client) Send(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	return c.request(ctx, method, path, q, body)
}

// Do sends a request and decodes a JSON answer into out (if non-nil).
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	resp, err := c.request(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// Stream sends a GET for NDJSON and calls fn for each line.
func Stream[T any](ctx context.Context, c *Client, path string, q url.Values, fn func(T) error) error {
	if q == nil {
		q = url.Values{}
	}
	q.Set("format", "ndjson")
	resp, err := c.request(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return fmt.Errorf("%s: line %q: %w", path, sc.Text(), err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return sc.Err()
}

// Sites lists sites matching a glob ("" for all).
func (c *Client) Sites(ctx context.Context, glob string) ([]registry.SiteView, error) {
	q := url.Values{}
	if glob != "" {
		q.Set("site", glob)
	}
	var p registry.Page[registry.SiteView]
	return p.Items, c.Do(ctx, http.MethodGet, "/api/v1/sites", q, nil, &p)
}

// Datasets streams the datasets matching a glob.
func (c *Client) Datasets(ctx context.Context, glob string, fn func(registry.DatasetView) error) error {
	return Stream(ctx, c, "/api/v1/datasets", url.Values{"name": {glob}}, fn)
}

// DatasetReplicas returns a dataset's replicas.
func (c *Client) DatasetReplicas(ctx context.Context, dataset string) ([]registry.DatasetReplicaView, error) {
	var p registry.Page[registry.DatasetReplicaView]
	return p.Items, c.Do(ctx, http.MethodGet, "/api/v1/datasets/"+url.PathEscape(dataset)+"/replicas", nil, nil, &p)
}

func requestsPath(kind registry.Kind) string {
	if kind == registry.KindDeletion {
		return "/api/v1/deletion-requests"
	}
	return "/api/v1/copy-requests"
}

// CreateCopy creates (or re-counts) a copy request.
func (c *Client) CreateCopy(ctx context.Context, b registry.CopyRequestBody) (registry.Request, error) {
	var r registry.Request
	return r, c.Do(ctx, http.MethodPost, requestsPath(registry.KindCopy), nil, b, &r)
}

// CreateDeletion creates (or re-counts) a deletion request.
func (c *Client) CreateDeletion(ctx context.Context, b registry.DeletionRequestBody) (registry.Request, error) {
	var r registry.Request
	return r, c.Do(ctx, http.MethodPost, requestsPath(registry.KindDeletion), nil, b, &r)
}

// GetRequest returns one request.
func (c *Client) GetRequest(ctx context.Context, kind registry.Kind, id int64) (registry.Request, error) {
	var r registry.Request
	return r, c.Do(ctx, http.MethodGet, requestsPath(kind)+"/"+strconv.FormatInt(id, 10), nil, nil, &r)
}

// ListRequests streams the requests matching q (status, user, item, site).
func (c *Client) ListRequests(ctx context.Context, kind registry.Kind, q url.Values, fn func(registry.Request) error) error {
	return Stream(ctx, c, requestsPath(kind), q, fn)
}

// CancelRequest cancels a new request.
func (c *Client) CancelRequest(ctx context.Context, kind registry.Kind, id int64) (registry.Request, error) {
	var r registry.Request
	return r, c.Do(ctx, http.MethodPost, requestsPath(kind)+"/"+strconv.FormatInt(id, 10)+"/cancel", nil, nil, &r)
}

// AddLock creates or extends a detox lock.
func (c *Client) AddLock(ctx context.Context, b registry.LockBody) (registry.Lock, error) {
	var l registry.Lock
	return l, c.Do(ctx, http.MethodPost, "/api/v1/locks", nil, b, &l)
}

// ListLocks lists locks matching q (item, user, service, site, group, all).
func (c *Client) ListLocks(ctx context.Context, q url.Values) ([]registry.Lock, error) {
	var all []registry.Lock
	for {
		var p registry.Page[registry.Lock]
		if err := c.Do(ctx, http.MethodGet, "/api/v1/locks", q, nil, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.Next == "" {
			return all, nil
		}
		q.Set("after", p.Next)
	}
}

// Unlock unlocks the caller's locks matching b.
func (c *Client) Unlock(ctx context.Context, b registry.UnlockBody) ([]registry.Lock, error) {
	var p registry.Page[registry.Lock]
	return p.Items, c.Do(ctx, http.MethodPost, "/api/v1/locks/unlock", nil, b, &p)
}

// SetLocks replaces the caller's lock set of a service.
func (c *Client) SetLocks(ctx context.Context, service string, locks []registry.LockBody) ([]registry.Lock, error) {
	var p registry.Page[registry.Lock]
	return p.Items, c.Do(ctx, http.MethodPut, "/api/v1/lock-sets/"+url.PathEscape(service), nil, locks, &p)
}
