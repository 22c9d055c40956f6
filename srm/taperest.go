package srm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/srm/fs"
)

// WLCG Tape REST API v1 on the data endpoint. A STAGE request is an
// srmBringOnline request in the same engine (same table, same picker and
// workers, same recall queue in the nearline driver, which shares one
// recall among identical files): its id is the request token, so the two
// front ends see the same requests. RELEASE releases the pins, cancel and
// DELETE abort. Errors are RFC 7807 problem documents.

// tokenPrincipalPrefix marks requests submitted by bearer-token clients;
// see call.preauthorized.
const tokenPrincipalPrefix = "token:"

// problem writes an RFC 7807 problem document.
func problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	body := map[string]any{"title": title, "status": status}
	if detail != "" {
		body["detail"] = detail
	}
	_ = json.NewEncoder(w).Encode(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serveTapeDiscovery answers /.well-known/wlcg-tape-rest-api (RFC 8615).
func (s *Server) serveTapeDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		problem(w, http.StatusMethodNotAllowed, "Method not allowed", "use GET")
		return
	}
	host := r.Host
	if host == "" {
		host = s.cfg.Hostname
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"sitename":    s.cfg.SiteName,
		"description": "dynamo storage element: WLCG Tape REST API on the nearline storage areas",
		"endpoints":   []map[string]any{{"uri": "https://" + host + "/api/v1", "version": "v1", "metadata": map[string]any{}}},
	})
}

// serveTapeREST routes /api/v1/{stage,release,archiveinfo}; false when the
// path is none of them.
func (s *Server) serveTapeREST(w http.ResponseWriter, r *http.Request, p *principal) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/")
	if !ok {
		return false
	}
	// gfal2 appends a slash to the endpoint names ("/api/v1/archiveinfo/").
	rest = strings.TrimSuffix(rest, "/")
	parts := strings.Split(rest, "/")
	method := func(m string) bool {
		if r.Method != m {
			w.Header().Set("Allow", m)
			problem(w, http.StatusMethodNotAllowed, "Method not allowed", "use "+m)
			return false
		}
		return true
	}
	if p.anonymous() && parts[0] != "" {
		problem(w, http.StatusUnauthorized, "Unauthorized", "a client certificate or a bearer token is required")
		return true
	}
	switch {
	case len(parts) == 1 && parts[0] == "stage":
		if method(http.MethodPost) {
			s.tapeStage(w, r, p)
		}
	case len(parts) == 2 && parts[0] == "stage" && parts[1] != "":
		switch r.Method {
		case http.MethodGet:
			s.tapeStageStatus(w, r, p, parts[1])
		case http.MethodDelete:
			s.tapeStageDelete(w, r, p, parts[1])
		default:
			w.Header().Set("Allow", "GET, DELETE")
			problem(w, http.StatusMethodNotAllowed, "Method not allowed", "use GET or DELETE")
		}
	case len(parts) == 3 && parts[0] == "stage" && parts[2] == "cancel":
		if method(http.MethodPost) {
			s.tapeCancelOrRelease(w, r, p, parts[1], true)
		}
	case len(parts) == 2 && parts[0] == "release":
		if method(http.MethodPost) {
			s.tapeCancelOrRelease(w, r, p, parts[1], false)
		}
	case len(parts) == 1 && parts[0] == "archiveinfo":
		if method(http.MethodPost) {
			s.tapeArchiveInfo(w, r, p)
		}
	default:
		return false
	}
	return true
}

// tapePath sanitises a client path (duplicate slashes, dot segments; a
// full URL is reduced to its path) into a site file name.
func tapePath(p string) (string, bool) {
	if u, err := url.Parse(p); err == nil && (u.Scheme == "https" || u.Scheme == "davs" || u.Scheme == "http") {
		p = u.Path
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return "", false
	}
	return path.Clean(p), true
}

func (s *Server) decodeTapeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, s.cfg.MaxBodyBytes)).Decode(v); err != nil {
		problem(w, http.StatusBadRequest, "JSON Validation error", "the body is not a JSON object of the expected shape")
		return false
	}
	return true
}

func (s *Server) tapeStage(w http.ResponseWriter, r *http.Request, p *principal) {
	var body struct {
		Files []struct {
			Path         string `json:"path"`
			DiskLifetime string `json:"diskLifetime"`
		} `json:"files"`
	}
	if !s.decodeTapeBody(w, r, &body) {
		return
	}
	if len(body.Files) == 0 {
		problem(w, http.StatusBadRequest, "JSON Validation error", "files - Field does not exist or is not a valid non-empty array")
		return
	}
	if len(body.Files) > s.cfg.Engine.MaxFilesPerRequest {
		problem(w, http.StatusBadRequest, "Too many files", fmt.Sprintf("at most %d files per request", s.cfg.Engine.MaxFilesPerRequest))
		return
	}
	ec := s.cfg.Engine
	now := time.Now()
	req := &request{Type: typeBoL, DN: p.name(), FQANs: strings.Join(p.fqans(), ","), UserDesc: "tape-rest",
		PinLifetime: int64(ec.DefaultPinLifetime / time.Second), Created: now.Unix(), Overwrite: "N"}
	// The pin is the longest diskLifetime asked for (ISO 8601), bounded by
	// engine.max_pin_lifetime; unparsable values are ignored, as the API
	// allows.
	for _, bf := range body.Files {
		if d, err := parseISODuration(bf.DiskLifetime); err == nil && d > 0 {
			req.PinLifetime = max(req.PinLifetime, int64(min(d, ec.MaxPinLifetime)/time.Second))
		}
	}
	seen := map[string]bool{}
	var files []*file
	for i, bf := range body.Files {
		stfn, ok := tapePath(bf.Path)
		if !ok {
			problem(w, http.StatusBadRequest, "JSON Validation error", fmt.Sprintf("files[%d].path must be an absolute path", i))
			return
		}
		if seen[stfn] {
			continue // one request with a file twice is that file once
		}
		seen[stfn] = true
		f := &file{SURL: "srm://" + s.cfg.Hostname + stfn, StFN: stfn, ExpectedSize: -1, FileSize: -1}
		// Authorized here, with the credential the client holds now; the
		// worker re-checks certificate clients as for srmBringOnline.
		if loc, err := s.ns.Resolve(stfn); err != nil {
			f.set(SRM_INVALID_PATH, "No such file or directory")
		} else if !p.permits(loc, accStage) {
			f.set(SRM_AUTHORIZATION_FAILURE, "permission denied")
		}
		files = append(files, f)
	}
	immediate := len(files) <= ec.ImmediateMaxFiles
	if err := s.engine.submit(r.Context(), req, files, immediate); err != nil {
		if errors.Is(err, ErrQueueFull) {
			w.Header().Set("Retry-After", "30")
			problem(w, http.StatusServiceUnavailable, "Busy", "the storage element is busy: retry later")
			return
		}
		s.log.WithError(err).Error("storing a tape stage request")
		problem(w, http.StatusInternalServerError, "Internal error", "could not store the request: retry later")
		return
	}
	if immediate {
		s.engine.process(context.WithoutCancel(r.Context()), req.ID)
	}
	host := r.Host
	if host == "" {
		host = s.cfg.Hostname
	}
	w.Header().Set("Location", "https://"+host+"/api/v1/stage/"+req.Token)
	writeJSON(w, http.StatusCreated, map[string]string{"requestId": req.Token})
}

// ownedStage loads a stage request of p; it answers 404 itself (also for
// another client's request, so ids cannot be probed).
func (s *Server) ownedStage(w http.ResponseWriter, r *http.Request, p *principal, id string) (*request, []*file) {
	rq, files, err := s.engine.byToken(r.Context(), id)
	if err != nil {
		s.log.WithError(err).Error("loading a stage request")
		problem(w, http.StatusInternalServerError, "Internal error", "could not read the request: retry later")
		return nil, nil
	}
	if rq == nil || rq.Type != typeBoL || rq.DN != p.name() {
		problem(w, http.StatusNotFound, "Not found", "no stage request "+id)
		return nil, nil
	}
	return rq, files
}

// tapeFileState maps an SRM file status to a Tape REST file state.
func tapeFileState(st StatusCode) string {
	switch st {
	case SRM_REQUEST_QUEUED:
		return "SUBMITTED"
	case SRM_REQUEST_INPROGRESS:
		return "STARTED"
	case SRM_SUCCESS, SRM_RELEASED:
		return "COMPLETED"
	case SRM_ABORTED:
		return "CANCELLED"
	}
	return "FAILED"
}

func (s *Server) tapeStageStatus(w http.ResponseWriter, r *http.Request, p *principal, id string) {
	rq, files := s.ownedStage(w, r, p, id)
	if rq == nil {
		return
	}
	type fileOut struct {
		Path  string `json:"path"`
		State string `json:"state"`
		Error string `json:"error,omitempty"`
	}
	out := struct {
		ID          string    `json:"id"`
		CreatedAt   int64     `json:"createdAt"`
		StartedAt   int64     `json:"startedAt"`
		CompletedAt *int64    `json:"completedAt,omitempty"`
		Files       []fileOut `json:"files"`
	}{ID: rq.Token, CreatedAt: rq.Created, StartedAt: rq.Created, Files: []fileOut{}}
	done := true
	for _, f := range files {
		st := tapeFileState(StatusCode(f.Status))
		fo := fileOut{Path: f.StFN, State: st}
		if st == "FAILED" {
			fo.Error = f.Explanation
			if fo.Error == "" {
				fo.Error = StatusCode(f.Status).String()
			}
		}
		if st == "SUBMITTED" || st == "STARTED" {
			done = false
		}
		out.Files = append(out.Files, fo)
	}
	if done {
		// The engine keeps no completion time; the poll that first sees the
		// request finished is the best bound it has.
		t := time.Now().Unix()
		out.CompletedAt = &t
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) tapeStageDelete(w http.ResponseWriter, r *http.Request, p *principal, id string) {
	rq, _ := s.ownedStage(w, r, p, id)
	if rq == nil {
		return
	}
	err := s.db.InTx(r.Context(), func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(r.Context(), "DELETE FROM srm_files WHERE request_id = ?", rq.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(r.Context(), "DELETE FROM srm_requests WHERE id = ?", rq.ID)
		return err
	})
	if err != nil {
		s.log.WithError(err).Error("deleting a stage request")
		problem(w, http.StatusInternalServerError, "Internal error", "could not delete the request: retry later")
		return
	}
	w.WriteHeader(http.StatusOK)
}

// tapeCancelOrRelease cancels (stops staging) or releases (drops the pin
// of) the named files of a stage request. A path not in the request fails
// the whole call and changes nothing.
func (s *Server) tapeCancelOrRelease(w http.ResponseWriter, r *http.Request, p *principal, id string, cancel bool) {
	var body struct {
		Paths []string `json:"paths"`
	}
	if !s.decodeTapeBody(w, r, &body) {
		return
	}
	if len(body.Paths) == 0 {
		problem(w, http.StatusBadRequest, "JSON Validation error", "paths - Field does not exist or is not a valid non-empty array")
		return
	}
	rq, files := s.ownedStage(w, r, p, id)
	if rq == nil {
		return
	}
	byPath := map[string]*file{}
	for _, f := range files {
		byPath[f.StFN] = f
	}
	var picked []*file
	for _, raw := range body.Paths {
		stfn, ok := tapePath(raw)
		f := byPath[stfn]
		if !ok || f == nil {
			problem(w, http.StatusBadRequest, "File missing from stage request",
				fmt.Sprintf("The file %s does not belong to the STAGE request %s. No modification has been made to this request.", raw, id))
			return
		}
		picked = append(picked, f)
	}
	var changed []*file
	var from []StatusCode
	for _, f := range picked {
		st := StatusCode(f.Status)
		switch {
		case cancel && (st == SRM_REQUEST_QUEUED || st == SRM_REQUEST_INPROGRESS):
			f.set(SRM_ABORTED, "cancelled by the client")
			changed = append(changed, f)
		case !cancel && st == SRM_SUCCESS:
			f.set(SRM_RELEASED, "released")
			changed = append(changed, f)
		}
	}
	if cancel {
		from = []StatusCode{SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS}
	} else {
		from = []StatusCode{SRM_SUCCESS}
	}
	if err := s.engine.saveFiles(r.Context(), nil, changed, nil, from...); err != nil {
		s.log.WithError(err).Error("saving a tape cancel/release")
		problem(w, http.StatusInternalServerError, "Internal error", "could not record the change: retry")
		return
	}
	if cancel && len(changed) > 0 {
		s.engine.refreshRequest(r.Context(), rq.Token)
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) tapeArchiveInfo(w http.ResponseWriter, r *http.Request, p *principal) {
	var body struct {
		Paths []string `json:"paths"`
	}
	if !s.decodeTapeBody(w, r, &body) {
		return
	}
	if len(body.Paths) == 0 {
		problem(w, http.StatusBadRequest, "JSON Validation error", "paths - Field does not exist or is not a valid non-empty array")
		return
	}
	type info struct {
		Path     string `json:"path"`
		Locality string `json:"locality,omitempty"`
		Error    string `json:"error,omitempty"`
	}
	const hidden = "USER ERROR: file does not exist or is not accessible to you"
	// Too many paths must not fail the call: answer the first ones.
	n := min(len(body.Paths), s.cfg.Engine.MaxFilesPerRequest)
	out := make([]info, 0, n)
	for _, raw := range body.Paths[:n] {
		it := info{Path: raw}
		stfn, ok := tapePath(raw)
		var loc *Location
		var err error
		if ok {
			loc, err = s.ns.Resolve(stfn)
		}
		if !ok || err != nil || !p.permits(loc, accList) {
			it.Error = hidden
			out = append(out, it)
			continue
		}
		fi, err := loc.Area.drv.Stat(r.Context(), loc.Name)
		if err != nil {
			it.Error = hidden
			out = append(out, it)
			continue
		}
		it.Locality = tapeLocality(fi)
		out = append(out, it)
	}
	writeJSON(w, http.StatusOK, out)
}

// tapeLocality maps a file's locality onto the Tape REST names.
func tapeLocality(fi fs.FileInfo) string {
	if fi.IsDir() {
		return "NONE"
	}
	switch fi.Locality {
	case fs.Nearline:
		return "TAPE"
	case fs.OnlineAndNearline:
		return "DISK_AND_TAPE"
	case fs.Online:
		return "DISK"
	}
	return "NONE"
}
