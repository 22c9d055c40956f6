package srm

import (
	"context"
	"errors"
	iofs "io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// serveData is the HTTPS data endpoint behind https TURLs: GET (with
// ranges) and HEAD (with Want-Digest: adler32) for reads, PUT for uploads.
// Paths are site file names, resolved and authorized exactly like SURLs.
// A PUT is accepted only while an srmPrepareToPut holds the SURL, so space
// accounting (done at srmPutDone) and the busy rules stay consistent.
func (s *Server) serveData(w http.ResponseWriter, r *http.Request) {
	pr := principalFrom(r.Context())
	stfn, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	var acc access
	switch r.Method {
	case http.MethodGet:
		acc = accRead
	case http.MethodHead:
		acc = accList
	case http.MethodPut, "COPY":
		acc = accCreate
	default:
		// Includes gfal2's POST macaroon request, which must get a 4xx.
		w.Header().Set("Allow", "GET, HEAD, PUT, COPY")
		http.Error(w, "method not supported on this data endpoint", http.StatusMethodNotAllowed)
		return
	}
	loc, err := s.ns.Resolve(stfn)
	if err != nil {
		code, msg := http.StatusNotFound, "no storage area serves this path"
		if errors.Is(err, ErrEscape) {
			code, msg = http.StatusForbidden, "the path leaves its storage area or names a reserved file"
		}
		http.Error(w, msg, code)
		return
	}
	if !pr.permits(loc, acc) {
		if pr.anonymous() {
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		http.Error(w, errForbidden.Error(), http.StatusForbidden)
		return
	}
	if r.Method == "COPY" {
		s.dataCopy(w, r, loc)
		return
	}
	if acc == accCreate {
		s.dataPut(w, r, loc)
		return
	}
	drv := loc.Area.drv
	fi, err := drv.Stat(r.Context(), loc.Name)
	if err != nil {
		httpFSError(w, err)
		return
	}
	if fi.IsDir() {
		http.Error(w, "is a directory", http.StatusMethodNotAllowed)
		return
	}
	if fi.Locality == fs.Nearline {
		http.Error(w, "file is on tape only: bring it online first", http.StatusServiceUnavailable)
		return
	}
	if wantsAdler32(r.Header.Get("Want-Digest")) {
		if ck, ok := drv.(fs.Checksummer); ok {
			if sum, err := ck.Adler32(r.Context(), loc.Name, true); err == nil && sum != "" {
				w.Header().Set("Digest", "adler32="+sum)
			}
		}
	}
	f, err := drv.Open(r.Context(), loc.Name)
	if err != nil {
		httpFSError(w, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, fi.Name, fi.ModTime, f)
}

func wantsAdler32(h string) bool {
	for _, p := range strings.Split(h, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(p), ";")
		if strings.EqualFold(name, "adler32") {
			return true
		}
	}
	return false
}

func (s *Server) dataPut(w http.ResponseWriter, r *http.Request, loc *Location) {
	u := s.engine.heldBy(loc.StFN)
	if u == nil {
		http.Error(w, "no srmPrepareToPut is in progress for this path", http.StatusConflict)
		return
	}
	limit, status, msg := s.uploadLimit(r.Context(), loc, u, r.ContentLength)
	if status != 0 {
		http.Error(w, msg, status)
		return
	}
	if limit >= 0 && r.ContentLength > limit {
		http.Error(w, "the upload is larger than its reservation (expectedFileSize) or the free space", http.StatusRequestEntityTooLarge)
		return
	}
	n, err := writeStaged(r.Context(), loc, u.token, r.Body, limit, r.ContentLength)
	if err != nil {
		switch {
		case errors.Is(err, errTooLarge):
			http.Error(w, "the upload is larger than its reservation (expectedFileSize) or the free space", http.StatusRequestEntityTooLarge)
		case errors.Is(err, rootfs.ErrSizeMismatch):
			http.Error(w, "short body: got "+strconv.FormatInt(n, 10)+" bytes", http.StatusBadRequest)
		default:
			s.log.WithError(err).WithField("stfn", loc.StFN).Warn("data PUT failed")
			httpFSError(w, err)
		}
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// uploadLimit is how many bytes one write of upload u to loc may carry
// (-1: no limit), or an HTTP refusal. An upload writing into a dynamic
// reservation may use it and the area's free space; any other upload its
// own reservation, which an upload of unknown size (and no configured
// default) takes from the free space now, by its declared length.
func (s *Server) uploadLimit(ctx context.Context, loc *Location, u *upload, length int64) (int64, int, string) {
	a := loc.Area
	if u.space != "" {
		free := a.Free()
		if free < 0 {
			return -1, 0, ""
		}
		if sp, err := s.spaceByToken(ctx, u.space); err == nil && sp != nil {
			free += sp.unused()
		}
		return free, 0, ""
	}
	if u.reserved > 0 {
		return u.reserved, 0, ""
	}
	if a.Config.OnlineSizeLimit == 0 {
		return -1, 0, ""
	}
	if length < 0 {
		return 0, http.StatusLengthRequired, "this storage area needs the upload size: send Content-Length or srmPrepareToPut with expectedFileSize"
	}
	if length > 0 && !s.engine.growReservation(loc.StFN, u.token, length) {
		return 0, http.StatusInsufficientStorage, "not enough space in the storage area"
	}
	return length, 0, ""
}

func httpFSError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		http.Error(w, "not found", http.StatusNotFound)
	case errors.Is(err, iofs.ErrPermission):
		http.Error(w, "permission denied", http.StatusForbidden)
	case errors.Is(err, fs.ErrNotOnline):
		http.Error(w, fs.ErrNotOnline.Error(), http.StatusServiceUnavailable)
	case errors.Is(err, rootfs.ErrSymlink), errors.Is(err, rootfs.ErrEscape), errors.Is(err, rootfs.ErrHardLink),
		errors.Is(err, rootfs.ErrBadName), errors.Is(err, rootfs.ErrNotRegular):
		http.Error(w, "not served: the path is a link, leaves the storage area or is not a regular file", http.StatusForbidden)
	case errors.Is(err, syscall.EISDIR):
		http.Error(w, "is a directory", http.StatusConflict)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		http.Error(w, "no space left on the storage", http.StatusInsufficientStorage)
	default:
		http.Error(w, "storage error", http.StatusInternalServerError)
	}
}
