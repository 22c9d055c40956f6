package webdav

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// Mkdir implements driver.Driver: MKCOL, walking up on 409 (missing parent)
// and treating 405 on an existing collection as success.
func (w *WebDAV) Mkdir(ctx context.Context, dir string) error {
	t, err := w.resolve(dir, true)
	if err != nil {
		return err
	}
	ctx, cancel := w.metaCtx(ctx)
	defer cancel()
	return w.mkcol(ctx, t, 0)
}

func (w *WebDAV) mkcol(ctx context.Context, t target, depth int) error {
	resp, err := w.do(ctx, "MKCOL", t, nil, 0, nil)
	if err != nil {
		return w.fail(ctx, "mkdir", t, nil, err)
	}
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusOK, http.StatusNoContent:
		resp.Body.Close()
		return nil
	case http.StatusMethodNotAllowed, http.StatusBadRequest:
		// Something exists there (405; Apache says 400 for "file/"): fine
		// if it is a collection.
		ferr := w.fail(ctx, "mkdir", t, resp, nil)
		e, err := w.Stat(ctx, t.rel)
		if err != nil {
			return ferr
		}
		if !e.IsDir {
			return driver.NewError(ctx, "mkdir", t.String(), driver.ErrExists, "", errors.New("a file is in the way"))
		}
		return nil
	case http.StatusConflict:
		if t.rel == "" {
			// The driver never creates anything above its root.
			resp.Body.Close()
			return driver.NewError(ctx, "mkdir", t.String(), driver.ErrNotFound, "http 409", errors.New("the parent of the driver root does not exist"))
		}
		resp.Body.Close()
		if depth > 64 {
			return driver.NewError(ctx, "mkdir", t.String(), driver.ErrServer, "http 409", errors.New("MKCOL keeps answering 409"))
		}
		parent, _ := w.resolve(parentOf(t.rel), true)
		if err := w.mkcol(ctx, parent, depth+1); err != nil {
			return err
		}
		return w.mkcol(ctx, t, depth+1)
	default:
		return w.fail(ctx, "mkdir", t, resp, nil)
	}
}

// Remove implements driver.Driver. WebDAV DELETE on a collection is
// recursive, so the target is checked with a PROPFIND first: Remove must
// never take a directory tree with it. (A directory created in between
// those two requests could still be deleted; no WebDAV request expresses
// "delete only if not a collection".)
func (w *WebDAV) Remove(ctx context.Context, p string) error {
	t, err := w.resolve(p, false)
	if err != nil {
		return err
	}
	ctx, cancel := w.metaCtx(ctx)
	defer cancel()
	e, err := w.Stat(ctx, p)
	if err != nil {
		return err
	}
	if e.IsDir {
		return driver.NewError(ctx, "remove", t.String(), driver.ErrIsDir, "", nil)
	}
	return w.delete(ctx, "remove", t)
}

func (w *WebDAV) delete(ctx context.Context, op string, t target) error {
	resp, err := w.do(ctx, http.MethodDelete, t, nil, 0, nil)
	if err != nil {
		return w.fail(ctx, op, t, nil, err)
	}
	if resp.StatusCode/100 != 2 {
		return w.fail(ctx, op, t, resp, nil)
	}
	resp.Body.Close()
	return nil
}

// Rmdir implements driver.Driver: a Depth 1 PROPFIND proves the collection
// empty before DELETE (which would otherwise remove the whole tree).
func (w *WebDAV) Rmdir(ctx context.Context, dir string) error {
	t, err := w.resolve(dir, true)
	if err != nil {
		return err
	}
	ctx, cancel := w.metaCtx(ctx)
	defer cancel()
	e, err := w.Stat(ctx, dir)
	if err != nil {
		return err
	}
	if !e.IsDir {
		return driver.NewError(ctx, "rmdir", t.String(), driver.ErrNotDir, "", nil)
	}
	nonEmpty := errors.New("non-empty")
	err = w.List(ctx, dir, func(driver.Entry) error { return nonEmpty })
	if errors.Is(err, nonEmpty) {
		return driver.NewError(ctx, "rmdir", t.String(), driver.ErrNotEmpty, "", nil)
	}
	if err != nil {
		return err
	}
	return w.delete(ctx, "rmdir", t)
}

// Open implements driver.Driver with GET and a Range header. A server that
// ignores the range (200 instead of 206) is handled by skipping bytes.
func (w *WebDAV) Open(ctx context.Context, p string, r driver.Range) (io.ReadCloser, error) {
	t, err := w.resolve(p, false)
	if err != nil {
		return nil, err
	}
	hdr := map[string]string{}
	if r.Offset > 0 && r.Length == 0 {
		// Open-ended ranges ("bytes=N-") are mishandled by some servers
		// (XrdHttp 5.5 answers 206 with no data), so close the range with
		// the size from a PROPFIND; resuming reads are rare enough.
		e, err := w.Stat(ctx, p)
		if err != nil {
			return nil, err
		}
		if e.IsDir {
			return nil, driver.NewError(ctx, "open", t.String(), driver.ErrIsDir, "", nil)
		}
		if r.Offset >= e.Size {
			return io.NopCloser(http.NoBody), nil
		}
		r.Length = e.Size - r.Offset
	}
	if r.Offset > 0 || r.Length > 0 {
		end := ""
		if r.Length > 0 {
			end = strconv.FormatInt(r.Offset+r.Length-1, 10)
		}
		hdr["Range"] = fmt.Sprintf("bytes=%d-%s", r.Offset, end)
	}
	resp, err := w.do(ctx, http.MethodGet, t, nil, 0, hdr)
	if err != nil {
		return nil, w.fail(ctx, "open", t, nil, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if r.Offset > 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, r.Offset); err != nil {
				resp.Body.Close()
				return nil, driver.NewError(ctx, "open", t.String(), driver.ErrServer, "", fmt.Errorf("skipping to offset %d: %w", r.Offset, err))
			}
		}
		if r.Length > 0 {
			return limited{io.LimitReader(resp.Body, r.Length), resp.Body}, nil
		}
		return resp.Body, nil
	case http.StatusPartialContent:
		return resp.Body, nil
	case http.StatusRequestedRangeNotSatisfiable:
		// Offset at or past the end: an empty read, as for a local file.
		resp.Body.Close()
		return io.NopCloser(http.NoBody), nil
	case http.StatusNotFound, http.StatusGone:
		return nil, w.fail(ctx, "open", t, resp, nil)
	default:
		// A GET on a collection gives 403/301/200-HTML depending on the
		// server; ask what it is before blaming the server.
		ferr := w.fail(ctx, "open", t, resp, nil)
		if e, err := w.Stat(ctx, p); err == nil && e.IsDir {
			return nil, driver.NewError(ctx, "open", t.String(), driver.ErrIsDir, "", nil)
		}
		return nil, ferr
	}
}

type limited struct {
	io.Reader
	io.Closer
}

// Put implements driver.Driver with PUT. A 409 (missing parent) is answered
// by MKCOL of the parents and one retry, when the body can be replayed: src
// is seekable, or the server refused before reading any of it (Expect:
// 100-continue).
func (w *WebDAV) Put(ctx context.Context, p string, src io.Reader, size int64) error {
	t, err := w.resolve(p, false)
	if err != nil {
		return err
	}
	if t.rel == "" {
		return driver.NewError(ctx, "put", t.String(), driver.ErrIsDir, "", nil)
	}
	start := int64(-1)
	if s, ok := src.(io.Seeker); ok {
		if pos, err := s.Seek(0, io.SeekCurrent); err == nil {
			start = pos
		}
	}
	for attempt := 0; ; attempt++ {
		body := &driver.SizeReader{R: driver.ContextReader(ctx, src), Want: size}
		hdr := map[string]string{}
		if size != 0 {
			hdr["Expect"] = "100-continue"
		}
		gate := &gatedReader{r: body}
		resp, err := w.do(ctx, http.MethodPut, t, gate, size, hdr)
		// net/http may still be reading the body after Do returns (it
		// drains what the server did not take); stop it before we look at
		// body's counters or rewind src.
		gate.Close()
		if body.Mismatch != nil {
			if resp != nil {
				resp.Body.Close()
			}
			return driver.NewError(ctx, "put", t.String(), driver.ErrSizeMismatch, "", body.Mismatch)
		}
		replayable := body.N == 0 || start >= 0
		if err != nil {
			// A keep-alive connection the server had already closed fails
			// the request before any body byte is sent (Expect:
			// 100-continue); net/http retries that only for replayable
			// bodies, so do it here.
			if attempt == 0 && replayable && ctx.Err() == nil {
				if rerr := rewind(src, start, body.N); rerr != nil {
					return driver.NewError(ctx, "put", t.String(), driver.ErrServer, "", rerr)
				}
				continue
			}
			return w.fail(ctx, "put", t, nil, err)
		}
		switch {
		case resp.StatusCode/100 == 2:
			resp.Body.Close()
			return nil
		case resp.StatusCode == http.StatusConflict && attempt < 2 && replayable:
			resp.Body.Close()
			parent, _ := w.resolve(parentOf(t.rel), true)
			if err := w.mkcol(ctx, parent, 0); err != nil {
				return err
			}
			if err := rewind(src, start, body.N); err != nil {
				return driver.NewError(ctx, "put", t.String(), driver.ErrServer, "", err)
			}
		case resp.StatusCode == http.StatusConflict || resp.StatusCode == http.StatusMethodNotAllowed:
			ferr := w.fail(ctx, "put", t, resp, nil)
			if e, err := w.Stat(ctx, p); err == nil && e.IsDir {
				return driver.NewError(ctx, "put", t.String(), driver.ErrIsDir, "", nil)
			}
			if resp.StatusCode == http.StatusConflict {
				// RFC 4918: 409 on PUT means a missing parent collection.
				return driver.NewError(ctx, "put", t.String(), driver.ErrNotFound, "http 409", ferr)
			}
			return ferr
		default:
			return w.fail(ctx, "put", t, resp, nil)
		}
	}
}

// gatedReader lets the owner cut off a reader that another goroutine (the
// HTTP transport) may still be reading: after Close returns, no Read is in
// progress and every later Read fails.
type gatedReader struct {
	mu     sync.Mutex
	r      io.Reader
	closed bool
}

func (g *gatedReader) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errors.New("request body read after the request ended")
	}
	return g.r.Read(p)
}

// Close implements io.Closer (the transport calls it too).
func (g *gatedReader) Close() error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	return nil
}

// rewind puts a partly read seekable source back at start.
func rewind(src io.Reader, start, read int64) error {
	if read == 0 {
		return nil
	}
	if _, err := src.(io.Seeker).Seek(start, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding the source: %w", err)
	}
	return nil
}

// Rename implements driver.Renamer with MOVE (Overwrite: T), creating the
// destination's parent on 409.
func (w *WebDAV) Rename(ctx context.Context, from, to string) error {
	tf, err := w.resolve(from, false)
	if err != nil {
		return err
	}
	tt, err := w.resolve(to, false)
	if err != nil {
		return err
	}
	ctx, cancel := w.metaCtx(ctx)
	defer cancel()
	for attempt := 0; ; attempt++ {
		resp, err := w.do(ctx, "MOVE", tf, nil, 0, map[string]string{"Destination": tt.url.String(), "Overwrite": "T"})
		if err != nil {
			return w.fail(ctx, "rename", tf, nil, err)
		}
		if resp.StatusCode/100 == 2 {
			resp.Body.Close()
			return nil
		}
		if resp.StatusCode != http.StatusConflict || attempt > 0 {
			return w.fail(ctx, "rename", tf, resp, nil)
		}
		resp.Body.Close()
		parent, _ := w.resolve(parentOf(tt.rel), true)
		if err := w.mkcol(ctx, parent, 0); err != nil {
			return err
		}
	}
}
