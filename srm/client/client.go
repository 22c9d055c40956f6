// Package client is an SRM v2.2 client for the storage elements dynamo
// manages (our own SE, StoRM, dCache): namespace calls, transfers
// (PrepareToGet/Put with status polling to a TURL), pins and bring-online.
// It speaks "httpg" as gfal2 does: TLS with an X.509 credential (proxy or
// EEC), then the one-byte GSI "no delegation" flag, then HTTP/1.1 SOAP.
//
// A Client is safe for concurrent use; connections are kept alive.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/internal/gridauth"
	"github.com/dynamo-go/dynamo/srm/internal/soapxml"
)

// Error is a non-success SRM status. Request-level errors have SURL "".
type Error struct {
	Op, SURL, Code, Explanation string
}

func (e *Error) Error() string {
	s := "srm " + e.Op
	if e.SURL != "" {
		s += " " + e.SURL
	}
	s += ": " + e.Code
	if e.Explanation != "" {
		s += ": " + e.Explanation
	}
	return s
}

// Sentinels matched by errors.Is against an *Error's code.
var (
	ErrNotFound      = errors.New("SRM_INVALID_PATH")
	ErrExists        = errors.New("SRM_DUPLICATION_ERROR")
	ErrDenied        = errors.New("SRM_AUTHORIZATION_FAILURE")
	ErrBusy          = errors.New("SRM_FILE_BUSY")
	ErrTooMany       = errors.New("SRM_TOO_MANY_RESULTS")
	ErrNotSupported  = errors.New("SRM_NOT_SUPPORTED")
	ErrInternal      = errors.New("SRM_INTERNAL_ERROR") // retryable
	ErrNotEmpty      = errors.New("SRM_NON_EMPTY_DIRECTORY")
	ErrNoSpace       = errors.New("SRM_NO_FREE_SPACE")
	ErrFault         = errors.New("SOAP fault")
	errSentinelCodes = []error{ErrNotFound, ErrExists, ErrDenied, ErrBusy, ErrTooMany, ErrNotSupported, ErrInternal, ErrNotEmpty, ErrNoSpace}
)

// Is matches the sentinel with the same status code.
func (e *Error) Is(target error) bool {
	for _, s := range errSentinelCodes {
		if target == s {
			return s.Error() == e.Code
		}
	}
	return false
}

// Client talks to one SRM endpoint.
type Client struct {
	url  string // https://host:port/srm/managerv2
	hc   *http.Client
	poll time.Duration
}

// Options configure New.
type Options struct {
	// Certificate is the client credential (see LoadCredential).
	Certificate tls.Certificate
	// CADir is the grid CA directory that must have signed the server
	// certificate; empty uses the system pool.
	CADir string
	// Timeout bounds one SOAP call; default 2 minutes.
	Timeout time.Duration
	// PollInterval is the first status-poll delay, doubled up to 5 s;
	// default 200 ms.
	PollInterval time.Duration
}

// LoadCredential loads a proxy file (certificates and key in one PEM, as
// grid-proxy-init writes) or a certificate and key pair (key = "" for a
// proxy).
func LoadCredential(cert, key string) (tls.Certificate, error) {
	if key == "" {
		key = cert
	}
	c, err := os.ReadFile(cert)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("srm client: credential: %w", err)
	}
	k, err := os.ReadFile(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("srm client: credential: %w", err)
	}
	return tls.X509KeyPair(c, k)
}

// New returns a client for endpoint: "srm://host:port", "httpg://host:port/srm/managerv2"
// or "https://host:port/srm/managerv2".
func New(endpoint string, o Options) (*Client, error) {
	hostport, path, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(hostport)
	tcfg := &tls.Config{Certificates: []tls.Certificate{o.Certificate}, ServerName: host, MinVersion: tls.VersionTLS12}
	if o.CADir != "" {
		cas, err := gridauth.LoadCADir(o.CADir)
		if err != nil {
			return nil, fmt.Errorf("srm client: %w", err)
		}
		tcfg.RootCAs = cas.Pool()
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.PollInterval == 0 {
		o.PollInterval = 200 * time.Millisecond
	}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		// httpg: TLS, then the GSI "no delegation" byte, then HTTP. The
		// transport sees a plain connection, hence the http:// URL below.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(raw, tcfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			if _, err := tc.Write([]byte{'0'}); err != nil {
				tc.Close()
				return nil, err
			}
			return tc, nil
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Client{url: "http://" + hostport + path, hc: &http.Client{Transport: tr, Timeout: o.Timeout}, poll: o.PollInterval}, nil
}

func parseEndpoint(ep string) (hostport, path string, err error) {
	scheme, rest, ok := strings.Cut(ep, "://")
	if !ok || (scheme != "srm" && scheme != "httpg" && scheme != "https") {
		return "", "", fmt.Errorf("srm client: endpoint %q: want srm://host:port or httpg://host:port/path", ep)
	}
	hostport, path, _ = strings.Cut(rest, "/")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	path = "/" + path
	if scheme == "srm" || path == "/" {
		path = "/srm/managerv2"
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return "", "", fmt.Errorf("srm client: endpoint %q needs host:port", ep)
	}
	return hostport, path, nil
}

// CloseIdle closes kept-alive connections.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// call posts one SOAP request; body is the inner part's XML (already
// escaped). It returns the response part.
func (c *Client) call(ctx context.Context, op, body string) (*soapxml.Node, error) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:srm="http://srm.lbl.gov/StorageResourceManager"><SOAP-ENV:Body><srm:`)
	b.WriteString(op + "><" + op + "Request>" + body + "</" + op + "Request></srm:" + op + "></SOAP-ENV:Body></SOAP-ENV:Envelope>")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, &b)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"`+op+`"`)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("srm %s: %w", op, err)
	}
	defer resp.Body.Close()
	name, part, err := soapxml.Decode(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("srm %s: HTTP %d: %w", op, resp.StatusCode, err)
	}
	if name == "Fault" {
		return nil, fmt.Errorf("srm %s: %w: %s", op, ErrFault, part.Str("faultstring"))
	}
	return part, nil
}

// status extracts returnStatus; ok lists the codes accepted as success.
func status(op, surl string, n *soapxml.Node, ok ...string) error {
	st := n
	if n.Child("returnStatus") != nil {
		st = n.Child("returnStatus")
	} else if n.Child("status") != nil {
		st = n.Child("status")
	}
	code := st.Str("statusCode")
	if code == "SRM_SUCCESS" {
		return nil
	}
	for _, o := range ok {
		if code == o {
			return nil
		}
	}
	return &Error{Op: op, SURL: surl, Code: code, Explanation: st.Str("explanation")}
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func surlArray(wrapper string, surls []string) string {
	var b strings.Builder
	b.WriteString("<" + wrapper + ">")
	for _, s := range surls {
		b.WriteString("<urlArray>" + esc(s) + "</urlArray>")
	}
	b.WriteString("</" + wrapper + ">")
	return b.String()
}
