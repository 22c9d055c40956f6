// Package webdav is the driver for WebDAV/HTTP storage: davs:// and https://
// (TLS, with an X509_CERT_DIR-style CA directory and a grid proxy or
// certificate as client credential) and dav:// / http:// (plain, for tests
// and trusted networks). It speaks PROPFIND (streamed), MKCOL, DELETE, GET
// with ranges, PUT, MOVE, HEAD with Want-Digest for checksums, and the WLCG
// HTTP third-party-copy COPY in pull mode.
package webdav

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

func init() {
	driver.Register(driver.Info{Name: "webdav", Schemes: []string{"davs", "https", "dav", "http"}, New: New})
}

// WebDAV is the WebDAV driver. Use New (or driver.Open).
type WebDAV struct {
	base   *url.URL // http(s)://host:port/root/ with a trailing slash
	shown  string   // the URL as opened, without credentials
	client *http.Client
	opts   driver.Options
}

// New opens a WebDAV root. davs maps to https and dav to http on the wire.
func New(_ context.Context, u *url.URL, opts driver.Options) (driver.Driver, error) {
	b := *u
	b.User, b.RawQuery, b.Fragment = nil, "", ""
	switch strings.ToLower(u.Scheme) {
	case "davs", "https":
		b.Scheme = "https"
	case "dav", "http":
		b.Scheme = "http"
	}
	if b.Host == "" {
		return nil, &driver.Error{Op: "open", URL: driver.Redact(u), Kind: driver.ErrInvalidPath, Err: errors.New("no host")}
	}
	if !strings.HasSuffix(b.Path, "/") {
		b.Path += "/"
	}
	b.RawPath = ""
	tlsCfg, err := opts.TLSConfig()
	if err != nil {
		return nil, &driver.Error{Op: "open", URL: driver.Redact(u), Kind: driver.ErrInvalid, Err: err}
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   30 * time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: opts.OpTimeout,
		// With Expect: 100-continue a server can refuse a PUT (409, 507,
		// redirect) before we stream the body.
		ExpectContinueTimeout: 2 * time.Second,
	}
	return &WebDAV{base: &b, shown: driver.Redact(u), client: &http.Client{Transport: tr}, opts: opts}, nil
}

// String returns the root URL as opened.
func (w *WebDAV) String() string { return w.shown }

// Close releases idle connections.
func (w *WebDAV) Close() error {
	w.client.CloseIdleConnections()
	return nil
}

// target is a resolved path: its clean relative form and its URL.
type target struct {
	rel string
	url *url.URL
}

func (t target) String() string { return t.url.String() }

// resolve maps a driver path to a URL; dir adds the trailing slash WebDAV
// uses for collections.
func (w *WebDAV) resolve(p string, dir bool) (target, error) {
	rel, err := driver.CleanPath(p)
	if err != nil {
		return target{}, &driver.Error{Op: "path", URL: w.shown + p, Kind: driver.ErrInvalidPath, Err: err}
	}
	u := *w.base
	if rel != "" {
		u.Path = w.base.Path + rel
		if dir {
			u.Path += "/"
		}
	}
	// url.URL.String escapes Path itself (space -> %20, '#' -> %23, ...).
	u.RawPath = ""
	return target{rel: rel, url: &u}, nil
}

func parentOf(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

func baseOf(rel string) string { return rel[strings.LastIndexByte(rel, '/')+1:] }

// metaCtx bounds metadata operations by OpTimeout.
func (w *WebDAV) metaCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, w.opts.OpTimeout)
}

// do sends one request. The caller closes resp.Body on success.
func (w *WebDAV) do(ctx context.Context, method string, t target, body io.Reader, size int64, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, t.url.String(), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	req.Header.Set("User-Agent", "dynamo-go/fileop")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return w.client.Do(req)
}

// fail turns a transport error or an HTTP status into a *driver.Error.
func (w *WebDAV) fail(ctx context.Context, op string, t target, resp *http.Response, err error) error {
	if resp == nil {
		kind := driver.ErrUnavailable
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			kind = driver.ErrTimeout
		}
		return driver.NewError(ctx, op, t.String(), kind, "", err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	return w.statusError(ctx, op, t, resp.StatusCode, strings.TrimSpace(string(msg)))
}

func (w *WebDAV) statusError(ctx context.Context, op string, t target, status int, msg string) error {
	var cause error
	if msg != "" {
		cause = fmt.Errorf("%s: %s", http.StatusText(status), firstLine(msg))
	} else {
		cause = errors.New(http.StatusText(status))
	}
	return driver.NewError(ctx, op, t.String(), driver.KindFromHTTP(status), fmt.Sprintf("http %d", status), cause)
}

func firstLine(s string) string {
	// Apache error pages are HTML; keep the title-ish part, short.
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

var (
	_ driver.Driver           = (*WebDAV)(nil)
	_ driver.Checksummer      = (*WebDAV)(nil)
	_ driver.SpaceReporter    = (*WebDAV)(nil)
	_ driver.Renamer          = (*WebDAV)(nil)
	_ driver.ThirdPartyCopier = (*WebDAV)(nil)
)
