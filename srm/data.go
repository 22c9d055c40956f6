package srm

import (
	"errors"
	"io"
	iofs "io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dynamo-go/dynamo/srm/fs"
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
		code := http.StatusNotFound
		if errors.Is(err, ErrEscape) {
			code = http.StatusForbidden
		}
		http.Error(w, err.Error(), code)
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
	fi, err := drv.Stat(r.Context(), loc.Phys)
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
			if sum, err := ck.Adler32(r.Context(), loc.Phys, true); err == nil && sum != "" {
				w.Header().Set("Digest", "adler32="+sum)
			}
		}
	}
	f, err := drv.Open(r.Context(), loc.Phys)
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
	if !s.engine.putBusy(r.Context(), loc.StFN) {
		http.Error(w, "no srmPrepareToPut is in progress for this path", http.StatusConflict)
		return
	}
	var body io.Reader = r.Body
	if free := s.uploadAllowance(r, loc); free >= 0 {
		if r.ContentLength > free {
			http.Error(w, "not enough space in the storage area", http.StatusInsufficientStorage)
			return
		}
		body = http.MaxBytesReader(w, r.Body, free)
	}
	out, err := loc.Area.drv.Create(r.Context(), loc.Phys)
	if err != nil {
		httpFSError(w, err)
		return
	}
	n, err := io.Copy(out, body)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "not enough space in the storage area", http.StatusInsufficientStorage)
			return
		}
		s.log.WithError(err).WithField("stfn", loc.StFN).Warn("data PUT failed")
		http.Error(w, "write failed", http.StatusInternalServerError)
		return
	}
	if r.ContentLength >= 0 && n != r.ContentLength {
		http.Error(w, "short body: got "+strconv.FormatInt(n, 10)+" bytes", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// uploadAllowance is how many bytes an upload to loc may write: the area's
// free space plus what is left of the reservation the upload writes into;
// -1 when unlimited.
func (s *Server) uploadAllowance(r *http.Request, loc *Location) int64 {
	free := loc.Area.Free()
	if free < 0 {
		return -1
	}
	if tok := s.engine.putSpaceOf(loc.StFN); tok != "" {
		if sp, err := s.spaceByToken(r.Context(), tok); err == nil && sp != nil {
			free += sp.unused()
		}
	}
	return free
}

func httpFSError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		http.Error(w, "not found", http.StatusNotFound)
	case errors.Is(err, iofs.ErrPermission):
		http.Error(w, "permission denied", http.StatusForbidden)
	case errors.Is(err, fs.ErrNotOnline):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		http.Error(w, "storage error", http.StatusInternalServerError)
	}
}
