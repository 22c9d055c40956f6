package webdav

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

const propfindBody = `<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/></D:prop></D:propfind>`

const quotaBody = `<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>`

// davResponse is one <D:response> of a multistatus body.
type davResponse struct {
	Href     string `xml:"DAV: href"`
	Propstat []struct {
		Status string `xml:"DAV: status"`
		Prop   struct {
			ResourceType struct {
				Collection *struct{} `xml:"DAV: collection"`
			} `xml:"DAV: resourcetype"`
			ContentLength string `xml:"DAV: getcontentlength"`
			LastModified  string `xml:"DAV: getlastmodified"`
			QuotaAvail    string `xml:"DAV: quota-available-bytes"`
			QuotaUsed     string `xml:"DAV: quota-used-bytes"`
		} `xml:"DAV: prop"`
	} `xml:"DAV: propstat"`
}

// props merges the propstat blocks whose status is 200 into an Entry and
// the raw quota values.
func (r *davResponse) props() (e driver.Entry, quotaAvail, quotaUsed string) {
	for _, ps := range r.Propstat {
		if !strings.Contains(ps.Status, " 200") {
			continue
		}
		p := ps.Prop
		if p.ResourceType.Collection != nil {
			e.IsDir = true
		}
		if p.ContentLength != "" {
			e.Size, _ = strconv.ParseInt(strings.TrimSpace(p.ContentLength), 10, 64)
		}
		if p.LastModified != "" {
			if t, err := http.ParseTime(strings.TrimSpace(p.LastModified)); err == nil {
				e.ModTime = t
			}
		}
		if p.QuotaAvail != "" {
			quotaAvail = p.QuotaAvail
		}
		if p.QuotaUsed != "" {
			quotaUsed = p.QuotaUsed
		}
	}
	if e.IsDir {
		e.Size = 0
	}
	return e, quotaAvail, quotaUsed
}

// hrefPath returns the unescaped, slash-trimmed path of an href (absolute
// URL or absolute path). RFC 4918 hrefs are URI-escaped (Apache), but
// XrdHttp sends names raw; an href with a space or an invalid escape is
// taken as raw. (A raw name that happens to contain a valid %XX escape is
// ambiguous and decoded.)
func hrefPath(href string) (string, error) {
	h := strings.TrimSpace(href)
	if i := strings.Index(h, "://"); i >= 0 {
		rest := h[i+3:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return "", nil
		}
		h = rest[j:]
	}
	if !strings.Contains(h, " ") {
		if u, err := url.PathUnescape(h); err == nil {
			h = u
		}
	}
	return strings.TrimSuffix(path.Clean("/"+h), "/"), nil
}

// propfind sends PROPFIND and streams each <D:response> to fn as it is
// decoded, so a million-entry collection never sits in memory.
func (w *WebDAV) propfind(ctx context.Context, op string, t target, depth, body string, fn func(*davResponse) error) error {
	resp, err := w.do(ctx, "PROPFIND", t, strings.NewReader(body), int64(len(body)),
		map[string]string{"Depth": depth, "Content-Type": "application/xml; charset=utf-8"})
	if err != nil {
		return w.fail(ctx, op, t, nil, err)
	}
	if resp.StatusCode != http.StatusMultiStatus {
		return w.fail(ctx, op, t, resp, nil)
	}
	defer resp.Body.Close()
	dec := xml.NewDecoder(resp.Body)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return driver.NewError(ctx, op, t.String(), driver.ErrServer, "", fmt.Errorf("multistatus body: %w", err))
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Space != "DAV:" || se.Name.Local != "response" {
			continue
		}
		var r davResponse
		if err := dec.DecodeElement(&r, &se); err != nil {
			return driver.NewError(ctx, op, t.String(), driver.ErrServer, "", fmt.Errorf("multistatus response: %w", err))
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
}

// errStopListing ends a propfind walk early without being an error.
var errStopListing = errors.New("stop listing")

// Stat implements driver.Driver with PROPFIND Depth 0.
func (w *WebDAV) Stat(ctx context.Context, p string) (driver.Entry, error) {
	t, err := w.resolve(p, false)
	if err != nil {
		return driver.Entry{}, err
	}
	ctx, cancel := w.metaCtx(ctx)
	defer cancel()
	var e driver.Entry
	found := false
	err = w.propfind(ctx, "stat", t, "0", propfindBody, func(r *davResponse) error {
		e, _, _ = r.props()
		found = true
		return errStopListing
	})
	if err != nil && !errors.Is(err, errStopListing) {
		return driver.Entry{}, err
	}
	if !found {
		return driver.Entry{}, driver.NewError(ctx, "stat", t.String(), driver.ErrServer, "", errors.New("empty multistatus"))
	}
	e.Name = baseOf(t.rel)
	return e, nil
}

// List implements driver.Driver with PROPFIND Depth 1, decoded as it
// streams. The collection's own entry is recognised by its href and skipped.
func (w *WebDAV) List(ctx context.Context, dir string, fn driver.ListFunc) error {
	t, err := w.resolve(dir, true)
	if err != nil {
		return err
	}
	self := strings.TrimSuffix(path.Clean("/"+t.url.Path), "/")
	return w.propfind(ctx, "list", t, "1", propfindBody, func(r *davResponse) error {
		hp, err := hrefPath(r.Href)
		if err != nil {
			return driver.NewError(ctx, "list", t.String(), driver.ErrServer, "", fmt.Errorf("bad href %q: %w", r.Href, err))
		}
		e, _, _ := r.props()
		if hp == self {
			if !e.IsDir {
				return driver.NewError(ctx, "list", t.String(), driver.ErrNotDir, "", nil)
			}
			return nil
		}
		e.Name = path.Base(hp)
		return fn(e)
	})
}

// Space implements driver.SpaceReporter with the RFC 4331 quota properties.
// Servers that do not report them give ErrUnsupported.
func (w *WebDAV) Space(ctx context.Context, p string) (driver.Space, error) {
	t, err := w.resolve(p, false)
	if err != nil {
		return driver.Space{}, err
	}
	ctx, cancel := w.metaCtx(ctx)
	defer cancel()
	var avail, used string
	err = w.propfind(ctx, "space", t, "0", quotaBody, func(r *davResponse) error {
		_, avail, used = r.props()
		return errStopListing
	})
	if err != nil && !errors.Is(err, errStopListing) {
		return driver.Space{}, err
	}
	a, errA := strconv.ParseInt(strings.TrimSpace(avail), 10, 64)
	u, errU := strconv.ParseInt(strings.TrimSpace(used), 10, 64)
	if errA != nil || errU != nil {
		return driver.Space{}, driver.NewError(ctx, "space", t.String(), driver.ErrUnsupported, "", errors.New("server reports no quota-available-bytes/quota-used-bytes"))
	}
	return driver.Space{Used: u, Total: u + a}, nil
}
