package srm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// cleanupTimeout bounds the release/abort calls made after the caller's
// context may already be done: a pin or an upload slot must not be leaked.
const cleanupTimeout = 30 * time.Second

func cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// Open gets a transfer URL (srmPrepareToGet, https) and reads it; Close
// releases the pin.
func (d *SRM) Open(ctx context.Context, p string, r driver.Range) (io.ReadCloser, error) {
	t, err := d.resolve(p)
	if err != nil {
		return nil, err
	}
	if t.rel == "" {
		return nil, driver.NewError(ctx, "open", d.root, driver.ErrIsDir, "", nil)
	}
	turl, tok, err := d.c.GetTURL(ctx, t.surl, "https")
	release := func() {
		if tok != "" {
			cctx, cancel := cleanupCtx(ctx)
			defer cancel()
			d.c.ReleaseFiles(cctx, tok, t.surl)
		}
	}
	if err != nil {
		release()
		return nil, d.refine(ctx, "open", t, d.wrap(ctx, "open", t, err), false)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, turl, nil)
	if err != nil {
		release()
		return nil, driver.NewError(ctx, "open", turl, driver.ErrServer, "", err)
	}
	if r.Offset > 0 || r.Length > 0 {
		end := ""
		if r.Length > 0 {
			end = strconv.FormatInt(r.Offset+r.Length-1, 10)
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%s", r.Offset, end))
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		release()
		return nil, driver.NewError(ctx, "open", turl, driver.ErrUnavailable, "", err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		release()
		return nil, driver.NewError(ctx, "open", turl, driver.KindFromHTTP(resp.StatusCode), "http "+strconv.Itoa(resp.StatusCode), nil)
	}
	body := io.Reader(resp.Body)
	if resp.StatusCode == http.StatusOK && (r.Offset > 0 || r.Length > 0) {
		// The server ignored the range: cut it out ourselves.
		if _, err := io.CopyN(io.Discard, resp.Body, r.Offset); err != nil {
			resp.Body.Close()
			release()
			return nil, driver.NewError(ctx, "open", turl, driver.ErrServer, "", err)
		}
		if r.Length > 0 {
			body = io.LimitReader(resp.Body, r.Length)
		}
	}
	return &pinnedBody{Reader: body, c: resp.Body, release: release}, nil
}

type pinnedBody struct {
	io.Reader
	c       io.Closer
	once    sync.Once
	release func()
}

func (b *pinnedBody) Close() error {
	err := b.c.Close()
	b.once.Do(b.release)
	return err
}

// Put uploads through srmPrepareToPut (overwrite) and an HTTPS PUT, then
// srmPutDone; on any failure the request is aborted so the SE drops the
// partial file.
func (d *SRM) Put(ctx context.Context, p string, src io.Reader, size int64) error {
	t, err := d.resolve(p)
	if err != nil {
		return err
	}
	url := driver.JoinURLPath(d.root, t.rel)
	if t.rel == "" {
		return driver.NewError(ctx, "put", url, driver.ErrIsDir, "", nil)
	}
	if e, err := d.stat(ctx, t); err == nil && e.IsDir {
		return driver.NewError(ctx, "put", url, driver.ErrIsDir, "", nil)
	}
	if parent := parentOf(t.rel); parent != "" {
		if err := d.Mkdir(ctx, parent); err != nil {
			return err
		}
	}
	turl, tok, err := d.c.PutTURL(ctx, t.surl, size, true, "https")
	abort := func() {
		if tok != "" {
			cctx, cancel := cleanupCtx(ctx)
			defer cancel()
			d.c.AbortFiles(cctx, tok, t.surl)
		}
	}
	if err != nil {
		abort()
		return d.wrap(ctx, "put", t, err)
	}
	body := &driver.SizeReader{R: driver.ContextReader(ctx, src), Want: size}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, turl, body)
	if err != nil {
		abort()
		return driver.NewError(ctx, "put", url, driver.ErrServer, "", err)
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	resp, err := d.hc.Do(req)
	if body.Mismatch != nil {
		if resp != nil {
			resp.Body.Close()
		}
		abort()
		return driver.NewError(ctx, "put", url, driver.ErrSizeMismatch, "", body.Mismatch)
	}
	if err != nil {
		abort()
		return driver.NewError(ctx, "put", url, driver.ErrUnavailable, "", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		abort()
		return driver.NewError(ctx, "put", url, driver.KindFromHTTP(resp.StatusCode), "http "+strconv.Itoa(resp.StatusCode), nil)
	}
	fs, err := d.c.PutDone(ctx, tok, t.surl)
	if err == nil && len(fs) == 1 {
		err = fs[0].Err("srmPutDone")
	} else if err == nil {
		err = errors.New("srmPutDone: no file status")
	}
	if err != nil {
		abort()
		return d.wrap(ctx, "put", t, err)
	}
	return nil
}

func parentOf(rel string) string {
	for i := len(rel) - 1; i >= 0; i-- {
		if rel[i] == '/' {
			return rel[:i]
		}
	}
	return ""
}
