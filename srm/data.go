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

// uploadParam is the query parameter of a put TURL naming the
// srmPrepareToPut it belongs to. A TURL is the WebDAV URL of the same path,
// so without it a PUT that reaches the server after its upload was aborted
// (a client that gave up mid-body, then called srmAbortFiles) would be
// served as a plain WebDAV write: it would hold the SURL busy, or even
// create the file the client was told did not get written.
const uploadParam = "srm-upload"

const staleTURL = "the srmPrepareToPut of this transfer URL is no longer in progress (done, aborted or expired)"

// putTURL marks turl as the transfer URL of the upload token.
func putTURL(turl, token string) string {
	u, err := url.Parse(turl)
	if err != nil || u.Scheme != "https" {
		return turl
	}
	u.RawQuery = url.Values{uploadParam: {token}}.Encode()
	return u.String()
}

// isPutTURL reports whether r was sent to the transfer URL of an
// srmPrepareToPut (see uploadParam).
func isPutTURL(r *http.Request) bool { return r.URL.Query().Get(uploadParam) != "" }

func (s *Server) dataPut(w http.ResponseWriter, r *http.Request, loc *Location) {
	u := s.engine.heldBy(loc.StFN)
	if u == nil || strings.HasPrefix(u.token, davHoldPrefix) {
		http.Error(w, "no srmPrepareToPut is in progress for this path", http.StatusConflict)
		return
	}
	if tok := r.URL.Query().Get(uploadParam); tok != "" && tok != u.token {
		http.Error(w, staleTURL, http.StatusConflict)
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
