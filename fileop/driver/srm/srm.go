// Package srm is the storage driver for SRM v2.2 sites ("srm://host:port/path"):
// namespace operations are SRM calls (srmLs with paging, srmMkdir, srmRm,
// srmRmdir) through srm/client, and data moves over the HTTPS transfer URL
// the SE hands out (srmPrepareToGet/srmPrepareToPut, then GET/PUT, then
// srmReleaseFiles/srmPutDone, or srmAbortFiles on failure).
//
// The credential (Options.Proxy, or Cert and Key) is required: SRM has no
// anonymous access. Trust comes from Options.CACertDir (a grid CA
// directory; the data connection also honours CABundle).
package srm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/fileop/driver"
	"github.com/dynamo-go/dynamo/srm/client"
)

func init() {
	driver.Register(driver.Info{Name: "srm", Schemes: []string{"srm"}, New: New})
}

// listPage is the srmLs page size: large enough to keep round trips few,
// small enough for any server's limit.
const listPage = 1000

// SRM is a driver rooted at one SRM path.
type SRM struct {
	root string // redacted root URL
	host string // host:port
	base string // absolute SURL path of the root, no trailing slash ("" for /)
	c    *client.Client
	hc   *http.Client
	opts driver.Options
}

// New opens an SRM driver rooted at u ("srm://host:port/path"; the port is
// required, as SRM has no standard one; a "?SFN=" query is not accepted in
// the root).
func New(ctx context.Context, u *url.URL, opts driver.Options) (driver.Driver, error) {
	root := driver.Redact(u)
	fail := func(kind error, err error) (driver.Driver, error) {
		return nil, &driver.Error{Op: "open", URL: root, Kind: kind, Err: err}
	}
	if u.Port() == "" {
		return fail(driver.ErrInvalidPath, errors.New("srm URL needs host:port"))
	}
	if u.RawQuery != "" {
		return fail(driver.ErrInvalidPath, errors.New("srm root URL must not have a query"))
	}
	base, err := driver.CleanPath(u.Path)
	if err != nil {
		return fail(driver.ErrInvalidPath, err)
	}
	if base != "" {
		base = "/" + base
	}
	var cert tls.Certificate
	switch {
	case opts.Proxy != "":
		cert, err = client.LoadCredential(opts.Proxy, "")
	case opts.Cert != "":
		cert, err = client.LoadCredential(opts.Cert, opts.Key)
	default:
		err = errors.New("srm needs a credential (proxy, or cert and key)")
	}
	if err != nil {
		return fail(driver.ErrPermission, err)
	}
	c, err := client.New("srm://"+u.Host, client.Options{Certificate: cert, CADir: opts.CACertDir, Timeout: opts.OpTimeout})
	if err != nil {
		return fail(driver.ErrInvalid, err)
	}
	tcfg, err := opts.TLSConfig()
	if err != nil {
		return fail(driver.ErrInvalid, err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tcfg, ResponseHeaderTimeout: opts.OpTimeout,
		MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second}}
	return &SRM{root: root, host: u.Host, base: base, c: c, hc: hc, opts: opts}, nil
}

// String returns the root URL.
func (d *SRM) String() string { return d.root }

// target is a cleaned path and its SURL.
type target struct {
	rel  string
	surl string
}

func (d *SRM) resolve(p string) (target, error) {
	rel, err := driver.CleanPath(p)
	if err != nil {
		return target{}, &driver.Error{Op: "resolve", URL: driver.JoinURLPath(d.root, p), Kind: driver.ErrInvalidPath, Err: err}
	}
	sp := d.base + "/" + rel
	if rel == "" && d.base != "" {
		sp = d.base
	}
	return target{rel: rel, surl: "srm://" + d.host + sp}, nil
}

// metaCtx bounds a metadata call by OpTimeout unless ctx ends earlier.
func (d *SRM) metaCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d.opts.OpTimeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d.opts.OpTimeout)
}

// kinds maps SRM status codes to driver kinds.
var kinds = []struct {
	srm  error
	kind error
}{
	{client.ErrNotFound, driver.ErrNotFound},
	{client.ErrExists, driver.ErrExists},
	{client.ErrDenied, driver.ErrPermission},
	{client.ErrBusy, driver.ErrUnavailable},
	{client.ErrNotSupported, driver.ErrUnsupported},
	{client.ErrNotEmpty, driver.ErrNotEmpty},
	{client.ErrNoSpace, driver.ErrNoSpace},
	{client.ErrInternal, driver.ErrServer},
}

// wrap turns an SRM or transport error into a *driver.Error.
func (d *SRM) wrap(ctx context.Context, op string, t target, err error) error {
	if err == nil {
		return nil
	}
	var de *driver.Error
	if errors.As(err, &de) {
		return err
	}
	url := driver.JoinURLPath(d.root, t.rel)
	var se *client.Error
	if errors.As(err, &se) {
		kind := driver.ErrServer
		for _, k := range kinds {
			if errors.Is(err, k.srm) {
				kind = k.kind
				break
			}
		}
		if se.Code == "SRM_INVALID_REQUEST" {
			kind = driver.ErrInvalid
		}
		return driver.NewError(ctx, op, url, kind, "srm "+se.Code, err)
	}
	// Transport failures: the server could not be reached or hung up.
	return driver.NewError(ctx, op, url, driver.ErrUnavailable, "", err)
}

func entryOf(rel string, e client.Entry) driver.Entry {
	name := ""
	if rel != "" {
		name = path.Base(rel)
	}
	out := driver.Entry{Name: name, Size: e.Size, ModTime: e.ModTime, IsDir: e.IsDir}
	if e.IsDir {
		out.Size = 0
	}
	return out
}

// Stat describes path (srmLs with numOfLevels 0).
func (d *SRM) Stat(ctx context.Context, p string) (driver.Entry, error) {
	t, err := d.resolve(p)
	if err != nil {
		return driver.Entry{}, err
	}
	e, err := d.stat(ctx, t)
	if err != nil {
		return driver.Entry{}, err
	}
	return entryOf(t.rel, e), nil
}

func (d *SRM) stat(ctx context.Context, t target) (client.Entry, error) {
	mctx, cancel := d.metaCtx(ctx)
	defer cancel()
	e, err := d.c.Stat(mctx, t.surl)
	return e, d.wrap(ctx, "stat", t, err)
}

// List calls fn for each entry of dir. srm/client pages srmLs with
// offset/count; the pages of one directory are gathered before fn sees
// them (one directory, not the tree, is in memory).
func (d *SRM) List(ctx context.Context, dir string, fn driver.ListFunc) error {
	t, err := d.resolve(dir)
	if err != nil {
		return err
	}
	entries, err := d.c.List(ctx, t.surl, listPage)
	if err != nil {
		return d.wrap(ctx, "list", t, err)
	}
	if len(entries) == 0 {
		// srmLs of a file answers with the file and no children: tell an
		// empty directory from a file.
		e, err := d.stat(ctx, t)
		if err != nil {
			return err
		}
		if !e.IsDir {
			return driver.NewError(ctx, "list", driver.JoinURLPath(d.root, t.rel), driver.ErrNotDir, "", nil)
		}
	}
	for _, e := range entries {
		if err := fn(entryOf(path.Join(t.rel, path.Base(e.Path)), e)); err != nil {
			return err
		}
	}
	return nil
}

// Mkdir creates dir and missing parents (srmMkdir needs the parent).
func (d *SRM) Mkdir(ctx context.Context, dir string) error {
	t, err := d.resolve(dir)
	if err != nil || t.rel == "" {
		return err
	}
	if e, err := d.stat(ctx, t); err == nil {
		if e.IsDir {
			return nil
		}
		return driver.NewError(ctx, "mkdir", driver.JoinURLPath(d.root, t.rel), driver.ErrExists, "", errors.New("a file is in the way"))
	}
	parts := strings.Split(t.rel, "/")
	for i := range parts {
		st, _ := d.resolve(strings.Join(parts[:i+1], "/"))
		mctx, cancel := d.metaCtx(ctx)
		err := d.c.Mkdir(mctx, st.surl)
		cancel()
		if err == nil {
			continue
		}
		werr := d.wrap(ctx, "mkdir", st, err)
		if !errors.Is(werr, driver.ErrExists) {
			if errors.Is(werr, driver.ErrNotFound) || errors.Is(werr, driver.ErrServer) {
				// A file in the path makes the server refuse the child.
				if e, serr := d.stat(ctx, st); serr == nil && !e.IsDir {
					return driver.NewError(ctx, "mkdir", driver.JoinURLPath(d.root, t.rel), driver.ErrNotDir, "", werr)
				}
			}
			return werr
		}
		if e, serr := d.stat(ctx, st); serr == nil && !e.IsDir {
			kind := driver.ErrNotDir
			if i == len(parts)-1 {
				kind = driver.ErrExists
			}
			return driver.NewError(ctx, "mkdir", driver.JoinURLPath(d.root, t.rel), kind, "", werr)
		}
	}
	return nil
}

// refine turns a failed file operation on a directory (or directory
// operation on a file) into ErrIsDir/ErrNotDir, which SRM servers report
// with assorted codes.
func (d *SRM) refine(ctx context.Context, op string, t target, err error, wantDir bool) error {
	if err == nil || errors.Is(err, driver.ErrCanceled) || errors.Is(err, driver.ErrTimeout) || errors.Is(err, driver.ErrNotEmpty) {
		return err
	}
	e, serr := d.stat(ctx, t)
	switch {
	case serr != nil && errors.Is(serr, driver.ErrNotFound):
		return driver.NewError(ctx, op, driver.JoinURLPath(d.root, t.rel), driver.ErrNotFound, "", err)
	case serr == nil && e.IsDir && !wantDir:
		return driver.NewError(ctx, op, driver.JoinURLPath(d.root, t.rel), driver.ErrIsDir, "", err)
	case serr == nil && !e.IsDir && wantDir:
		return driver.NewError(ctx, op, driver.JoinURLPath(d.root, t.rel), driver.ErrNotDir, "", err)
	}
	return err
}

// Remove deletes a file (srmRm).
func (d *SRM) Remove(ctx context.Context, p string) error {
	t, err := d.resolve(p)
	if err != nil {
		return err
	}
	if t.rel == "" {
		return driver.NewError(ctx, "remove", d.root, driver.ErrIsDir, "", nil)
	}
	mctx, cancel := d.metaCtx(ctx)
	defer cancel()
	fs, err := d.c.Rm(mctx, t.surl)
	if err == nil && len(fs) == 1 {
		err = fs[0].Err("srmRm")
	} else if err != nil && len(fs) == 1 && fs[0].Code != "" {
		err = fs[0].Err("srmRm")
	}
	return d.refine(ctx, "remove", t, d.wrap(ctx, "remove", t, err), false)
}

// Rmdir deletes an empty directory (srmRmdir, not recursive).
func (d *SRM) Rmdir(ctx context.Context, dir string) error {
	t, err := d.resolve(dir)
	if err != nil {
		return err
	}
	mctx, cancel := d.metaCtx(ctx)
	defer cancel()
	err = d.c.Rmdir(mctx, t.surl, false)
	return d.refine(ctx, "rmdir", t, d.wrap(ctx, "rmdir", t, err), true)
}

// Checksum returns the adler32 the SE reports in srmLs.
func (d *SRM) Checksum(ctx context.Context, p, algo string) (string, error) {
	t, err := d.resolve(p)
	if err != nil {
		return "", err
	}
	if algo != driver.AlgoAdler32 {
		return "", driver.NewError(ctx, "checksum", driver.JoinURLPath(d.root, t.rel), driver.ErrUnsupported, "", fmt.Errorf("algorithm %q", algo))
	}
	e, err := d.stat(ctx, t)
	switch {
	case err != nil:
		return "", err
	case e.IsDir:
		return "", driver.NewError(ctx, "checksum", driver.JoinURLPath(d.root, t.rel), driver.ErrIsDir, "", nil)
	case e.Checksum == "":
		return "", driver.NewError(ctx, "checksum", driver.JoinURLPath(d.root, t.rel), driver.ErrUnsupported, "", errors.New("the SE reports no adler32"))
	}
	return strings.ToLower(e.Checksum), nil
}

var (
	_ driver.Driver      = (*SRM)(nil)
	_ driver.Checksummer = (*SRM)(nil)
)
