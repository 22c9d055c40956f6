package srm

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	iofs "io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// WebDAV (RFC 4918 class 1) on the data endpoint: every storage area at its
// prefix, authorized per request with the same area rules as SRM (through
// the principal: certificate, token or macaroon), every byte through the
// area's confined driver. Writes are atomic (temporary, fsync, rename) and
// accounted in the area like an srmPutDone. A PUT to a path an
// srmPrepareToPut holds is the SRM upload itself (data.go); any other PUT
// holds the path the same way while it runs, so SRM and WebDAV writers of
// one name exclude each other.

const davAllow = "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, POST"

// davHoldPrefix marks the engine's hold of a path by a WebDAV write.
const davHoldPrefix = "dav-"

// serveData dispatches the WebDAV and TURL methods.
func (s *Server) serveData(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		w.Header().Set("DAV", "1")
		w.Header().Set("MS-Author-Via", "DAV")
		w.Header().Set("Allow", davAllow)
		w.Header().Set("Accept-Ranges", "bytes")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	stfn, ok := cleanHTTPPath(r.URL.Path)
	if !ok {
		httpError(w, http.StatusBadRequest, "bad path")
		return
	}
	loc, err := s.ns.Resolve(stfn)
	if err != nil {
		if errors.Is(err, ErrEscape) {
			httpError(w, http.StatusForbidden, "the path leaves its storage area or names a reserved file")
			return
		}
		httpError(w, http.StatusNotFound, "no storage area serves this path")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.davGet(w, r, loc)
	case http.MethodPut:
		s.davPut(w, r, loc)
	case http.MethodDelete:
		s.davDelete(w, r, loc)
	case "MKCOL":
		s.davMkcol(w, r, loc)
	case "COPY":
		switch {
		case r.Header.Get("Source") != "":
			s.tpcPull(w, r, loc)
		case s.isRemote(r, r.Header.Get("Destination")):
			s.tpcPush(w, r, loc)
		default:
			s.davCopyMove(w, r, loc, false)
		}
	case "MOVE":
		s.davCopyMove(w, r, loc, true)
	case "PROPFIND":
		s.davPropfind(w, r, loc)
	case "PROPPATCH":
		s.davProppatch(w, r, loc)
	default:
		w.Header().Set("Allow", davAllow)
		httpError(w, http.StatusMethodNotAllowed, "method not supported on this data endpoint")
	}
}

// allow checks the request's principal for acc on loc and answers 401
// (no credential) or 403 itself when refused.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, loc *Location, acc ...access) bool {
	p := principalFrom(r.Context())
	for _, a := range acc {
		if p.permits(loc, a) {
			return true
		}
	}
	if p.anonymous() {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+s.cfg.Hostname+`"`)
		httpError(w, http.StatusUnauthorized, "authentication required: a client certificate or a bearer token")
		return false
	}
	httpError(w, http.StatusForbidden, errForbidden.Error())
	return false
}

func (s *Server) davGet(w http.ResponseWriter, r *http.Request, loc *Location) {
	acc := []access{accRead}
	if r.Method == http.MethodHead {
		acc = []access{accList, accRead}
	}
	if !s.allow(w, r, loc, acc...) {
		return
	}
	drv := loc.Area.drv
	fi, err := drv.Stat(r.Context(), loc.Name)
	if err != nil {
		davFSError(w, err)
		return
	}
	if fi.IsLink() {
		davFSError(w, rootfs.ErrSymlink)
		return
	}
	if fi.IsDir() {
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Type", "httpd/unix-directory")
			w.WriteHeader(http.StatusOK)
			return
		}
		httpError(w, http.StatusForbidden, "a collection: list it with PROPFIND")
		return
	}
	if fi.Locality == fs.Nearline {
		w.Header().Set("Retry-After", "60")
		httpError(w, http.StatusServiceUnavailable, "the file is on tape only: stage it first (Tape REST API or srmBringOnline)")
		return
	}
	w.Header().Set("ETag", etag(fi))
	if digest := s.digests(r.Context(), loc, fi, r.Header.Get("Want-Digest")); digest != "" {
		w.Header().Set("Digest", digest)
	}
	if r.Method == http.MethodHead {
		// No open: a HEAD is metadata, and must not fail on a file the
		// driver refuses to open for reasons the stat already told.
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size, 10))
		w.Header().Set("Last-Modified", fi.ModTime.UTC().Format(http.TimeFormat))
		w.Header().Set("Accept-Ranges", "bytes")
		w.WriteHeader(http.StatusOK)
		return
	}
	f, err := drv.Open(r.Context(), loc.Name)
	if err != nil {
		davFSError(w, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", fi.ModTime, f)
}

func etag(fi fs.FileInfo) string {
	return `"` + strconv.FormatInt(fi.ModTime.UnixNano(), 36) + "-" + strconv.FormatInt(fi.Size, 36) + `"`
}

// md5Limit bounds the files whose MD5 is computed on request (it is never
// stored, so each request reads the whole file).
const md5Limit = 256 << 20

// digests answers a Want-Digest header (RFC 3230): adler32 from the
// driver's stored checksum (computed once if missing), md5 computed for
// files up to md5Limit.
func (s *Server) digests(ctx context.Context, loc *Location, fi fs.FileInfo, want string) string {
	if want == "" {
		return ""
	}
	var out []string
	for _, p := range strings.Split(want, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(p), ";")
		if strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") && !strings.Contains(params, "q=0.") {
			continue
		}
		switch strings.ToLower(name) {
		case "adler32":
			if ck, ok := loc.Area.drv.(fs.Checksummer); ok {
				if sum, err := ck.Adler32(ctx, loc.Name, true); err == nil && sum != "" {
					out = append(out, "adler32="+sum)
				}
			}
		case "md5":
			if fi.Size > md5Limit || fi.Locality == fs.Nearline {
				continue
			}
			f, err := loc.Area.drv.Open(ctx, loc.Name)
			if err != nil {
				continue
			}
			h := md5.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err == nil {
				out = append(out, "md5="+base64.StdEncoding.EncodeToString(h.Sum(nil)))
			}
		}
	}
	return strings.Join(out, ",")
}

// parentIsCollection answers 409 itself when loc's parent is missing or not
// a collection (RFC 4918 §9.7.1, §9.3.1).
func (s *Server) parentIsCollection(w http.ResponseWriter, r *http.Request, loc *Location) bool {
	if loc.Name == "" {
		return true
	}
	parent := path.Dir(loc.Name)
	if parent == "." {
		return true // the area root
	}
	fi, err := loc.Area.drv.Stat(r.Context(), parent)
	if err != nil || !fi.IsDir() {
		httpError(w, http.StatusConflict, "the parent collection does not exist")
		return false
	}
	return true
}

// holdForWrite holds stfn for a WebDAV write, reserving n bytes of the
// area; it answers 409 or 507 itself when it cannot.
func (s *Server) holdForWrite(w http.ResponseWriter, loc *Location, n int64) (*upload, bool) {
	if n < 0 {
		n = 0
	}
	if !loc.Area.reserve(n) {
		httpError(w, http.StatusInsufficientStorage, "not enough space in the storage area")
		return nil, false
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	u := &upload{token: davHoldPrefix + hex.EncodeToString(b[:]), area: loc.Area, reserved: n}
	if !s.engine.holdPut(loc.StFN, u) {
		loc.Area.unreserve(n)
		httpError(w, http.StatusConflict, "another upload of this path is in progress")
		return nil, false
	}
	return u, true
}

func (s *Server) davPut(w http.ResponseWriter, r *http.Request, loc *Location) {
	ctx := r.Context()
	drv := loc.Area.drv
	prev, statErr := drv.Stat(ctx, loc.Name)
	exists := statErr == nil
	acc := accCreate
	if exists {
		acc = accModify
	}
	if !s.allow(w, r, loc, acc) {
		return
	}
	if u := s.engine.heldBy(loc.StFN); isPutTURL(r) || (u != nil && !strings.HasPrefix(u.token, davHoldPrefix)) {
		s.dataPut(w, r, loc) // the TURL of an srmPrepareToPut, never a WebDAV write
		return
	}
	if loc.Name == "" || (exists && prev.IsDir()) {
		httpError(w, http.StatusMethodNotAllowed, "a collection cannot be replaced by a file")
		return
	}
	if exists && prev.IsLink() {
		davFSError(w, rootfs.ErrSymlink)
		return
	}
	if !s.parentIsCollection(w, r, loc) {
		return
	}
	if loc.Area.Config.OnlineSizeLimit > 0 && r.ContentLength < 0 {
		httpError(w, http.StatusLengthRequired, "this storage area needs the upload size: send Content-Length")
		return
	}
	u, ok := s.holdForWrite(w, loc, r.ContentLength)
	if !ok {
		return
	}
	defer s.engine.releasePut(loc.StFN, u.token)
	limit := int64(-1)
	if loc.Area.Config.OnlineSizeLimit > 0 {
		limit = r.ContentLength
	}
	// A Digest the client declares (a third-party push does) is verified
	// before the file appears.
	n, err := s.writeFile(ctx, loc, r.Body, limit, r.ContentLength, digestAdler32(r.Header.Get("Digest")), true)
	if err != nil {
		s.writeError(w, loc, n, r.ContentLength, err)
		return
	}
	if exists {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Location", s.publicURL(r, loc.StFN))
	w.WriteHeader(http.StatusCreated)
}

// errChecksumMismatch: the data written is not what its source declared.
var errChecksumMismatch = errors.New("checksum mismatch")

// writeAtomic writes body to name through drv: a temporary, checked
// against expected size (>= 0) and adler32 (non-empty), then renamed over
// the name (replace false: an existing name fails with ErrExist). At most
// limit bytes (< 0: unlimited) are accepted.
func writeAtomic(ctx context.Context, drv fs.Driver, name string, body io.Reader, limit, expected int64, adler string, replace bool) (int64, error) {
	wr, err := drv.Create(ctx, name)
	if err != nil {
		return 0, err
	}
	defer wr.Abort()
	if limit >= 0 {
		body = io.LimitReader(body, limit+1)
	}
	// A driver writer that checksums as it writes saves a second pass.
	summer, streams := wr.(interface{ Adler32() string })
	var dst io.Writer = plainWriter{wr}
	h := adler32.New()
	if adler != "" && !streams {
		dst = io.MultiWriter(dst, h)
	}
	buf := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(dst, body, *buf)
	copyBufs.Put(buf)
	if err != nil {
		return n, err
	}
	if limit >= 0 && n > limit {
		return n, errTooLarge
	}
	if adler != "" {
		got := hex.EncodeToString(h.Sum(nil))
		if streams {
			got = summer.Adler32()
		}
		if got != strings.ToLower(adler) {
			return n, fmt.Errorf("%w: got adler32 %s, the source declared %s", errChecksumMismatch, got, adler)
		}
	}
	return n, wr.Commit(expected, replace)
}

// copyBufs are the buffers of streamed writes: large ones keep the
// syscalls per GiB few.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// plainWriter hides a writer's ReadFrom, so io.CopyBuffer uses our large
// buffer instead of the writer's generic 32 KiB loop.
type plainWriter struct{ io.Writer }

// writeFile is writeAtomic to loc plus what srmPutDone does after: the
// area's used space and the tape copy follow.
func (s *Server) writeFile(ctx context.Context, loc *Location, body io.Reader, limit, expected int64, adler string, replace bool) (int64, error) {
	drv := loc.Area.drv
	var old int64
	if prev, err := drv.Stat(ctx, loc.Name); err == nil && prev.Mode.IsRegular() {
		old = prev.Size
	}
	n, err := writeAtomic(ctx, drv, loc.Name, body, limit, expected, adler, replace)
	if err != nil {
		return n, err
	}
	loc.Area.used.Add(n - old)
	if stg, ok := drv.(fs.Stager); ok {
		if err := stg.Migrate(ctx, loc.Name); err != nil {
			s.log.WithError(err).WithField("stfn", loc.StFN).Warn("migrating to tape")
		}
	}
	return n, nil
}

// writeError answers a failed writeFile.
func (s *Server) writeError(w http.ResponseWriter, loc *Location, n, expected int64, err error) {
	switch {
	case errors.Is(err, errTooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, "the upload is larger than announced or than the free space")
	case errors.Is(err, rootfs.ErrSizeMismatch):
		httpError(w, http.StatusBadRequest, "short body: got "+strconv.FormatInt(n, 10)+" of "+strconv.FormatInt(expected, 10)+" bytes")
	case errors.Is(err, iofs.ErrExist):
		httpError(w, http.StatusPreconditionFailed, "the destination exists")
	case errors.Is(err, errChecksumMismatch):
		httpError(w, http.StatusBadRequest, err.Error())
	default:
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) && !errors.Is(err, io.ErrUnexpectedEOF) {
			s.log.WithError(err).WithField("stfn", loc.StFN).Warn("WebDAV write failed")
		}
		davFSError(w, err)
	}
}

func (s *Server) davMkcol(w http.ResponseWriter, r *http.Request, loc *Location) {
	if !s.allow(w, r, loc, accCreate) {
		return
	}
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		httpError(w, http.StatusUnsupportedMediaType, "MKCOL with a body is not supported")
		return
	}
	if _, err := loc.Area.drv.Stat(r.Context(), loc.Name); err == nil {
		httpError(w, http.StatusMethodNotAllowed, "the resource exists")
		return
	}
	if !s.parentIsCollection(w, r, loc) {
		return
	}
	if err := loc.Area.drv.Mkdir(r.Context(), loc.Name); err != nil {
		if errors.Is(err, iofs.ErrExist) {
			httpError(w, http.StatusMethodNotAllowed, "the resource exists")
			return
		}
		davFSError(w, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) davDelete(w http.ResponseWriter, r *http.Request, loc *Location) {
	if !s.allow(w, r, loc, accDelete) {
		return
	}
	if loc.Name == "" {
		httpError(w, http.StatusForbidden, "the root of a storage area cannot be deleted")
		return
	}
	if d := r.Header.Get("Depth"); d != "" && !strings.EqualFold(d, "infinity") {
		httpError(w, http.StatusBadRequest, "DELETE takes Depth: infinity only")
		return
	}
	fi, err := loc.Area.drv.Stat(r.Context(), loc.Name)
	if err != nil {
		davFSError(w, err)
		return
	}
	if err := s.davRemove(r.Context(), loc, fi); err != nil {
		davFSError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// davRemove deletes loc (a file, link or collection with all below),
// keeping the area accounting, the dead properties and the SRM requests on
// the removed names right. Names an upload holds are not removed.
func (s *Server) davRemove(ctx context.Context, loc *Location, fi fs.FileInfo) error {
	drv := loc.Area.drv
	if fi.IsDir() {
		entries, err := drv.List(ctx, loc.Name)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Mode&iofs.ModeIrregular != 0 {
				return fmt.Errorf("%w: another filesystem is mounted below", rootfs.ErrEscape)
			}
			child := &Location{Area: loc.Area, StFN: path.Join(loc.StFN, e.Name), Name: path.Join(loc.Name, e.Name)}
			if err := s.davRemove(ctx, child, e); err != nil {
				return err
			}
		}
	} else if s.engine.heldBy(loc.StFN) != nil {
		return errBusy
	}
	if err := drv.Remove(ctx, loc.Name); err != nil {
		return err
	}
	if fi.Mode.IsRegular() {
		loc.Area.used.Add(-fi.Size)
		s.engine.abortSURL(ctx, loc.StFN, "the file was deleted")
	}
	return s.dropProps(ctx, loc.StFN)
}

// errBusy: an upload holds the name.
var errBusy = errors.New("an upload of this path is in progress")

// davFSError maps a driver error to an HTTP answer without revealing
// physical paths.
func davFSError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errNoSpace):
		httpError(w, http.StatusInsufficientStorage, errNoSpace.Error())
	case errors.Is(err, errBusy):
		httpError(w, http.StatusConflict, errBusy.Error())
	case errors.Is(err, iofs.ErrNotExist):
		httpError(w, http.StatusNotFound, "not found")
	case errors.Is(err, iofs.ErrPermission):
		httpError(w, http.StatusForbidden, "permission denied by the storage")
	case errors.Is(err, fs.ErrNotOnline):
		httpError(w, http.StatusServiceUnavailable, fs.ErrNotOnline.Error())
	case errors.Is(err, rootfs.ErrSymlink), errors.Is(err, rootfs.ErrEscape), errors.Is(err, rootfs.ErrHardLink),
		errors.Is(err, rootfs.ErrBadName), errors.Is(err, rootfs.ErrNotRegular):
		httpError(w, http.StatusForbidden, "not served: the path is a link, leaves the storage area or is not a regular file")
	case errors.Is(err, syscall.ENOTEMPTY):
		httpError(w, http.StatusConflict, "the collection is not empty")
	case errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENOTDIR):
		httpError(w, http.StatusConflict, "a collection is in the way")
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		httpError(w, http.StatusInsufficientStorage, "no space left on the storage")
	case errors.Is(err, iofs.ErrExist):
		httpError(w, http.StatusPreconditionFailed, "the destination exists")
	case errors.Is(err, errChecksumMismatch):
		httpError(w, http.StatusBadRequest, err.Error())
	default:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		httpError(w, http.StatusInternalServerError, "storage error")
	}
}

// destination parses a Destination header into a site file name on this
// endpoint; ok false when it names another server.
func (s *Server) destination(r *http.Request, h string) (string, bool, error) {
	if h == "" {
		return "", false, errors.New("the Destination header is missing")
	}
	u, err := url.Parse(h)
	if err != nil {
		return "", false, errors.New("the Destination header is not a URL")
	}
	if u.Host != "" && !s.isSelf(r, u) {
		return "", false, nil
	}
	p, ok := cleanHTTPPath(u.Path)
	if !ok {
		return "", false, errors.New("the Destination path is not absolute")
	}
	return p, true, nil
}

// isSelf reports whether u addresses this data endpoint.
func (s *Server) isSelf(r *http.Request, u *url.URL) bool {
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	myPort := portOf(s.DataAddr(), s.cfg.DataListen)
	return port == myPort && (strings.EqualFold(host, s.cfg.Hostname) || host == "localhost" || host == "127.0.0.1" || host == "::1")
}

// isRemote reports whether a Destination header names another server (a
// third-party push).
func (s *Server) isRemote(r *http.Request, h string) bool {
	if h == "" {
		return false
	}
	u, err := url.Parse(h)
	return err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == "davs") && !s.isSelf(r, u)
}
