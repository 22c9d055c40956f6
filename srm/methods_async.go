package srm

import (
	"context"
	"errors"
	"path"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/srm/fs"
)

// submitted is the outcome of accepting an asynchronous request.
type submitted struct {
	r      *request
	files  []*file
	status TReturnStatus // set when the request was refused as a whole
}

// accept validates and stores an asynchronous request. fileElem names the
// request array item's SURL element (sourceSURL, targetSURL).
func (s *Server) accept(c *call, req *node, rtype, surlElem string) submitted {
	items := req.Child("arrayOfFileRequests").All("requestArray")
	if len(items) == 0 {
		return submitted{status: rs(SRM_INVALID_REQUEST, "arrayOfFileRequests is empty")}
	}
	if len(items) > s.cfg.Engine.MaxFilesPerRequest {
		return submitted{status: rs(SRM_INVALID_REQUEST, "too many files in one request: at most "+itoa(int64(s.cfg.Engine.MaxFilesPerRequest)))}
	}
	ec := s.cfg.Engine
	pin := int64(ec.DefaultPinLifetime / time.Second)
	lifeElem := "desiredPinLifeTime"
	if rtype == typeBoL {
		lifeElem = "desiredLifeTime"
	}
	if v, err := req.Int(lifeElem, 0); err != nil {
		return submitted{status: rs(SRM_INVALID_REQUEST, err.Error())}
	} else if v > 0 {
		pin = min(v, int64(ec.MaxPinLifetime/time.Second))
	}
	total, err := req.Int("desiredTotalRequestTime", 0)
	if err != nil {
		return submitted{status: rs(SRM_INVALID_REQUEST, err.Error())}
	}
	now := time.Now()
	r := &request{Type: rtype, DN: c.id.DN, FQANs: strings.Join(c.id.FQANs, ","), UserDesc: trunc(req.Str("userRequestDescription"), 255),
		PinLifetime: pin, Created: now.Unix(), Overwrite: "N"}
	if total > 0 {
		r.Deadline = now.Unix() + total
	}
	r.SpaceToken = trunc(req.Str("targetSpaceToken"), 64)
	switch req.Str("overwriteOption") {
	case "ALWAYS":
		r.Overwrite = "A"
	case "WHEN_FILES_ARE_DIFFERENT":
		r.Overwrite = "D"
	}
	protos := req.Child("transferParameters").Strings("arrayOfTransferProtocols", "stringArray")
	if len(protos) == 0 && rtype != typeBoL {
		protos = []string{"https"}
	}
	r.Protocols = trunc(strings.Join(protos, ","), 255)
	files := make([]*file, 0, len(items))
	for _, it := range items {
		surl := it.Str(surlElem)
		f := &file{SURL: surl, ExpectedSize: -1, FileSize: -1}
		if v, err := it.Int("expectedFileSize", -1); err == nil {
			f.ExpectedSize = v
		}
		// Unparsable SURLs fail at once; resolution and authorization are
		// the worker's job, as in StoRM.
		if u, err := ParseSURL(surl); err != nil {
			f.set(SRM_INVALID_PATH, err.Error())
			f.StFN = surl
		} else {
			f.StFN = cleanStFN(u.Path)
		}
		files = append(files, f)
	}
	immediate := len(files) <= ec.ImmediateMaxFiles
	if err := s.engine.submit(c.ctx, r, files, immediate); err != nil {
		if errors.Is(err, ErrQueueFull) {
			s.metrics.refusals.Inc()
			return submitted{status: rs(SRM_INTERNAL_ERROR, "the storage element is busy ("+err.Error()+"): retry later")}
		}
		s.log.WithError(err).Error("storing an SRM request")
		return submitted{status: rs(SRM_INTERNAL_ERROR, "could not store the request: retry later")}
	}
	if immediate {
		// Not bound to the call: a client hanging up mid-way must not
		// leave the request half processed.
		s.engine.process(context.WithoutCancel(c.ctx), r.ID)
		if r2, f2, err := s.engine.load(c.ctx, "id = ?", r.ID); err == nil {
			r, files = r2, f2
		}
	}
	return submitted{r: r, files: files}
}

// cleanStFN is the key under which a SURL's path is stored and looked up
// (busy table, srmRm aborts): the cleaned absolute path.
func cleanStFN(p string) string { return path.Clean(p) }

func (s *Server) prepareToGet(c *call, req *node) (any, error) {
	sub := s.accept(c, req, typeGet, "sourceSURL")
	if sub.r == nil {
		return getResponse{ReturnStatus: sub.status}, nil
	}
	return getStatus(sub.r, sub.files, nil), nil
}

func (s *Server) prepareToPut(c *call, req *node) (any, error) {
	sub := s.accept(c, req, typePut, "targetSURL")
	if sub.r == nil {
		return putResponse{ReturnStatus: sub.status}, nil
	}
	return putStatus(sub.r, sub.files, nil), nil
}

func (s *Server) bringOnline(c *call, req *node) (any, error) {
	sub := s.accept(c, req, typeBoL, "sourceSURL")
	if sub.r == nil {
		return bolResponse{ReturnStatus: sub.status}, nil
	}
	return bolStatus(sub.r, sub.files, nil), nil
}

// lookup loads the request of a StatusOf*/PutDone call and checks its type
// and owner. On failure st is the request-level answer.
func (s *Server) lookup(c *call, req *node, rtype string) (*request, []*file, *TReturnStatus) {
	tok := req.Str("requestToken")
	if tok == "" {
		st := rs(SRM_INVALID_REQUEST, "requestToken is required")
		return nil, nil, &st
	}
	r, files, err := s.engine.byToken(c.ctx, tok)
	if err != nil {
		s.log.WithError(err).Error("loading a request")
		st := rs(SRM_INTERNAL_ERROR, "could not read the request: retry later")
		return nil, nil, &st
	}
	if r == nil || (rtype != "" && r.Type != rtype) {
		st := rs(SRM_INVALID_REQUEST, "unknown request token "+tok)
		return nil, nil, &st
	}
	if r.DN != c.id.DN {
		st := rs(SRM_AUTHORIZATION_FAILURE, "request "+tok+" belongs to another client")
		return nil, nil, &st
	}
	return r, files, nil
}

// surlFilter returns the SURLs named in the call (nil: all files).
func surlFilter(req *node, wrapper string) map[string]bool {
	list := req.Strings(wrapper, "urlArray")
	if len(list) == 0 {
		return nil
	}
	m := map[string]bool{}
	for _, u := range list {
		m[u] = true
	}
	return m
}

func remaining(exp int64) *int64 {
	if exp <= 0 {
		return nil
	}
	return i64(max(exp-time.Now().Unix(), 0))
}

func reqReturn(r *request) TReturnStatus {
	return rs(StatusCode(r.Status), r.Explanation)
}

func getStatus(r *request, files []*file, filter map[string]bool) getResponse {
	resp := getResponse{ReturnStatus: reqReturn(r), RequestToken: r.Token}
	resp.Files = &struct {
		Items []getFileStatus `xml:"statusArray"`
	}{}
	for _, f := range files {
		if filter != nil && !filter[f.SURL] {
			continue
		}
		st := getFileStatus{SourceSURL: f.SURL, Status: rs(StatusCode(f.Status), f.Explanation)}
		if f.FileSize >= 0 {
			st.FileSize = i64(f.FileSize)
		}
		if StatusCode(f.Status) == SRM_FILE_PINNED {
			st.TransferURL = f.TURL
			st.RemainingPinTime = remaining(f.PinExpires)
		}
		if f.Status == int(SRM_REQUEST_QUEUED) || f.Status == int(SRM_REQUEST_INPROGRESS) {
			st.EstimatedWaitTime = i64(1)
		}
		resp.Files.Items = append(resp.Files.Items, st)
	}
	return resp
}

func putStatus(r *request, files []*file, filter map[string]bool) putResponse {
	resp := putResponse{ReturnStatus: reqReturn(r), RequestToken: r.Token}
	resp.Files = &struct {
		Items []putFileStatus `xml:"statusArray"`
	}{}
	for _, f := range files {
		if filter != nil && !filter[f.SURL] {
			continue
		}
		st := putFileStatus{SURL: f.SURL, Status: rs(StatusCode(f.Status), f.Explanation)}
		if f.FileSize >= 0 {
			st.FileSize = i64(f.FileSize)
		}
		if StatusCode(f.Status) == SRM_SPACE_AVAILABLE {
			st.TransferURL = f.TURL
			st.RemainingPinLifetime = remaining(f.PinExpires)
		}
		if f.Status == int(SRM_REQUEST_QUEUED) || f.Status == int(SRM_REQUEST_INPROGRESS) {
			st.EstimatedWaitTime = i64(1)
		}
		resp.Files.Items = append(resp.Files.Items, st)
	}
	return resp
}

func bolStatus(r *request, files []*file, filter map[string]bool) bolResponse {
	resp := bolResponse{ReturnStatus: reqReturn(r), RequestToken: r.Token}
	resp.Files = &struct {
		Items []bolFileStatus `xml:"statusArray"`
	}{}
	for _, f := range files {
		if filter != nil && !filter[f.SURL] {
			continue
		}
		st := bolFileStatus{SourceSURL: f.SURL, Status: rs(StatusCode(f.Status), f.Explanation)}
		if f.FileSize >= 0 {
			st.FileSize = i64(f.FileSize)
		}
		if StatusCode(f.Status) == SRM_SUCCESS {
			st.RemainingPinTime = remaining(f.PinExpires)
		}
		if f.Status == int(SRM_REQUEST_QUEUED) || f.Status == int(SRM_REQUEST_INPROGRESS) {
			st.EstimatedWaitTime = i64(2)
		}
		resp.Files.Items = append(resp.Files.Items, st)
	}
	return resp
}

func (s *Server) statusOfGet(c *call, req *node) (any, error) {
	r, files, st := s.lookup(c, req, typeGet)
	if st != nil {
		return getResponse{ReturnStatus: *st}, nil
	}
	return getStatus(r, files, surlFilter(req, "arrayOfSourceSURLs")), nil
}

func (s *Server) statusOfPut(c *call, req *node) (any, error) {
	r, files, st := s.lookup(c, req, typePut)
	if st != nil {
		return putResponse{ReturnStatus: *st}, nil
	}
	return putStatus(r, files, surlFilter(req, "arrayOfTargetSURLs")), nil
}

func (s *Server) statusOfBringOnline(c *call, req *node) (any, error) {
	r, files, st := s.lookup(c, req, typeBoL)
	if st != nil {
		return bolResponse{ReturnStatus: *st}, nil
	}
	return bolStatus(r, files, surlFilter(req, "arrayOfSourceSURLs")), nil
}

// fileOp applies op to the files of a request named by the call's SURL list
// (all files when the list is empty) and answers with per-SURL statuses.
func (s *Server) fileOp(c *call, r *request, files []*file, req *node, requireSURLs bool,
	op func(f *file) TReturnStatus) surlStatuses {
	want := req.Strings("arrayOfSURLs", "urlArray")
	if requireSURLs && len(want) == 0 {
		return surlStatuses{ReturnStatus: rs(SRM_INVALID_REQUEST, "arrayOfSURLs is empty")}
	}
	out := &arrayOfSURLStatus{}
	ok := 0
	add := func(surl string, st TReturnStatus) {
		if st.StatusCode == SRM_SUCCESS.String() {
			ok++
		}
		out.Items = append(out.Items, TSURLReturnStatus{SURL: surl, Status: st})
	}
	if len(want) == 0 {
		for _, f := range files {
			add(f.SURL, op(f))
		}
	} else {
		for _, u := range want {
			var hit *file
			for _, f := range files {
				if f.SURL == u || f.StFN == surlStFN(u) {
					hit = f
					break
				}
			}
			if hit == nil {
				add(u, rs(SRM_INVALID_PATH, "SURL is not part of request "+r.Token))
				continue
			}
			add(u, op(hit))
		}
	}
	return surlStatuses{ReturnStatus: rs(summarize(ok, len(out.Items)), ""), Files: out}
}

func surlStFN(surl string) string {
	if u, err := ParseSURL(surl); err == nil {
		return cleanStFN(u.Path)
	}
	return surl
}

func (s *Server) putDone(c *call, req *node) (any, error) {
	r, files, st := s.lookup(c, req, typePut)
	if st != nil {
		return surlStatuses{ReturnStatus: *st}, nil
	}
	var changed []*file
	resp := s.fileOp(c, r, files, req, true, func(f *file) TReturnStatus {
		switch StatusCode(f.Status) {
		case SRM_SPACE_AVAILABLE:
		case SRM_SUCCESS:
			return rs(SRM_DUPLICATION_ERROR, "srmPutDone already done for this SURL")
		case SRM_ABORTED:
			return rs(SRM_INVALID_PATH, "the upload was aborted")
		default:
			return rs(SRM_FAILURE, "the upload is in state "+StatusCode(f.Status).String()+": check srmStatusOfPutRequest")
		}
		loc, err := s.ns.Resolve(f.StFN)
		if err != nil {
			return rs(SRM_INVALID_PATH, err.Error())
		}
		fi, old, err := publishStaged(c.ctx, loc, r.Token)
		if errors.Is(err, errNothingUploaded) {
			return rs(SRM_INVALID_PATH, errNothingUploaded.Error()+": PUT the data to the transfer URL first")
		}
		if err != nil {
			s.log.WithError(err).WithField("stfn", f.StFN).Warn("publishing an upload at put-done")
			return rs(fsStatus(err))
		}
		if ck, ok := loc.Area.drv.(fs.Checksummer); ok {
			if _, err := ck.Adler32(c.ctx, loc.Name, true); err != nil {
				s.log.WithError(err).WithField("stfn", f.StFN).Warn("computing adler32 at put-done")
			}
		}
		loc.Area.used.Add(fi.Size - old)
		if r.SpaceToken != "" && r.SpaceToken != loc.Area.Config.SpaceToken {
			s.consumeSpace(c.ctx, r.SpaceToken, fi.Size)
		}
		if stg, ok := loc.Area.drv.(fs.Stager); ok {
			if err := stg.Migrate(c.ctx, loc.Name); err != nil {
				s.log.WithError(err).WithField("stfn", f.StFN).Warn("migrating to tape")
			}
		}
		s.engine.releasePut(f.StFN, r.Token)
		f.set(SRM_SUCCESS, "")
		f.FileSize, f.PinExpires = fi.Size, 0
		changed = append(changed, f)
		return rs(SRM_SUCCESS, "")
	})
	r.Status, r.Explanation = requestStatus(r.Type, files)
	if err := s.engine.saveFiles(c.ctx, r, changed, []StatusCode{SRM_SUCCESS, SRM_PARTIAL_SUCCESS, SRM_FAILURE, SRM_REQUEST_INPROGRESS}, SRM_SPACE_AVAILABLE); err != nil {
		s.log.WithError(err).Error("saving put-done")
		return surlStatuses{ReturnStatus: rs(SRM_INTERNAL_ERROR, "could not record srmPutDone: retry")}, nil
	}
	return resp, nil
}

func (s *Server) releaseFiles(c *call, req *node) (any, error) {
	if req.Str("requestToken") == "" {
		return s.releaseBySURL(c, req)
	}
	r, files, st := s.lookup(c, req, "")
	if st != nil {
		return surlStatuses{ReturnStatus: *st}, nil
	}
	var changed []*file
	resp := s.fileOp(c, r, files, req, false, func(f *file) TReturnStatus {
		if (r.Type == typeGet && f.Status == int(SRM_FILE_PINNED)) || (r.Type == typeBoL && f.Status == int(SRM_SUCCESS)) {
			f.set(SRM_RELEASED, "released")
			changed = append(changed, f)
			return rs(SRM_SUCCESS, "released")
		}
		if f.Status == int(SRM_RELEASED) {
			return rs(SRM_SUCCESS, "already released")
		}
		return rs(SRM_INVALID_PATH, "not released because it is not pinned")
	})
	if err := s.engine.saveFiles(c.ctx, nil, changed, nil, SRM_FILE_PINNED, SRM_SUCCESS); err != nil {
		s.log.WithError(err).Error("saving release")
		return surlStatuses{ReturnStatus: rs(SRM_INTERNAL_ERROR, "could not record the release: retry")}, nil
	}
	return resp, nil
}

// releaseBySURL releases the caller's pins on the SURLs, whatever request
// holds them.
func (s *Server) releaseBySURL(c *call, req *node) (any, error) {
	surls := req.Strings("arrayOfSURLs", "urlArray")
	if len(surls) == 0 {
		return surlStatuses{ReturnStatus: rs(SRM_INVALID_REQUEST, "requestToken or arrayOfSURLs is required")}, nil
	}
	out := &arrayOfSURLStatus{}
	ok := 0
	for _, u := range surls {
		res, err := s.db.ExecContext(c.ctx, `UPDATE srm_files SET status = ?, explanation = 'released' WHERE stfn = ?
			AND request_id IN (SELECT id FROM srm_requests WHERE client_dn = ?)
			AND ((status = ? AND request_id IN (SELECT id FROM srm_requests WHERE rtype = ?)) OR (status = ? AND request_id IN (SELECT id FROM srm_requests WHERE rtype = ?)))`,
			SRM_RELEASED, surlStFN(u), c.id.DN, SRM_FILE_PINNED, typeGet, SRM_SUCCESS, typeBoL)
		if err != nil {
			out.Items = append(out.Items, TSURLReturnStatus{u, rs(SRM_INTERNAL_ERROR, "could not release: retry")})
			continue
		}
		if n, _ := res.RowsAffected(); n == 0 {
			out.Items = append(out.Items, TSURLReturnStatus{u, rs(SRM_INVALID_PATH, "not released because it is not pinned")})
			continue
		}
		ok++
		out.Items = append(out.Items, TSURLReturnStatus{u, rs(SRM_SUCCESS, "released")})
	}
	return surlStatuses{ReturnStatus: rs(summarize(ok, len(surls)), ""), Files: out}, nil
}

// abortable reports whether a file can still be aborted.
func abortable(st StatusCode) bool {
	switch st {
	case SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS, SRM_FILE_PINNED, SRM_SPACE_AVAILABLE:
		return true
	}
	return false
}

// abort aborts the given files of r (all when only is nil).
func (s *Server) abort(c *call, r *request, files []*file, req *node, requireSURLs bool) surlStatuses {
	var changed []*file
	var drops []*file
	resp := s.fileOp(c, r, files, req, requireSURLs, func(f *file) TReturnStatus {
		st := StatusCode(f.Status)
		if st == SRM_ABORTED {
			return rs(SRM_SUCCESS, "already aborted") // [5.12.2 h)]
		}
		if !abortable(st) {
			return rs(SRM_FAILURE, "request is in a final status: abort not allowed")
		}
		if r.Type == typePut && st == SRM_SPACE_AVAILABLE {
			drops = append(drops, f)
		}
		f.set(SRM_ABORTED, "aborted by the client")
		changed = append(changed, f)
		return rs(SRM_SUCCESS, "")
	})
	if resp.Files == nil {
		return resp
	}
	r.Status, r.Explanation = requestStatus(r.Type, files)
	if len(changed) > 0 && StatusCode(r.Status) != SRM_ABORTED && req.Strings("arrayOfSURLs", "urlArray") == nil {
		r.Status = int(SRM_ABORTED)
	}
	err := s.engine.saveFiles(c.ctx, r, changed, []StatusCode{SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS, SRM_SUCCESS, SRM_PARTIAL_SUCCESS, SRM_FAILURE},
		SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS, SRM_FILE_PINNED, SRM_SPACE_AVAILABLE)
	if err != nil {
		s.log.WithError(err).Error("saving abort")
		return surlStatuses{ReturnStatus: rs(SRM_INTERNAL_ERROR, "could not record the abort: retry")}
	}
	for _, f := range drops {
		s.engine.dropUpload(c.ctx, f.StFN, r.Token)
	}
	return resp
}

func (s *Server) abortRequest(c *call, req *node) (any, error) {
	r, files, st := s.lookup(c, req, "")
	if st != nil {
		return returnOnly{*st}, nil
	}
	// Abort every file: the SURL list of the request part is not consulted.
	resp := s.abort(c, r, files, &node{}, false)
	if resp.Files == nil { // storing the abort failed
		return returnOnly{resp.ReturnStatus}, nil
	}
	// Files already final are left as they are; the request abort succeeds
	// when anything was (or already had been) aborted.
	for _, f := range resp.Files.Items {
		if f.Status.StatusCode == SRM_SUCCESS.String() {
			return returnOnly{rs(SRM_SUCCESS, "request aborted")}, nil
		}
	}
	return returnOnly{rs(SRM_FAILURE, "request is in a final status: abort not allowed")}, nil
}

func (s *Server) abortFiles(c *call, req *node) (any, error) {
	r, files, st := s.lookup(c, req, "")
	if st != nil {
		return surlStatuses{ReturnStatus: *st}, nil
	}
	return s.abort(c, r, files, req, true), nil
}

func (s *Server) extendFileLifeTime(c *call, req *node) (any, error) {
	tok := req.Str("requestToken")
	newFile, newPin := req.Has("newFileLifeTime"), req.Has("newPinLifeTime")
	bad := func(msg string) (any, error) { return extendResponse{ReturnStatus: rs(SRM_INVALID_REQUEST, msg)}, nil }
	switch {
	case newFile && newPin:
		return bad("newFileLifeTime and newPinLifeTime cannot both be given") // [5.16.2 a)]
	case newPin && tok == "":
		return bad("newPinLifeTime needs a requestToken")
	case newFile && tok != "":
		return bad("newFileLifeTime is per SURL: give no requestToken")
	}
	surls := req.Strings("arrayOfSURLs", "urlArray")
	if len(surls) == 0 {
		return bad("arrayOfSURLs is empty")
	}
	resp := extendResponse{}
	resp.Files = &struct {
		Items []lifetimeStatus `xml:"statusArray"`
	}{}
	ok := 0
	if !newPin {
		// Every file here is permanent: nothing to extend.
		for _, u := range surls {
			loc, code, expl := s.locate(c, u, OpList)
			st := lifetimeStatus{SURL: u, Status: rs(code, expl)}
			if loc != nil {
				if _, err := loc.Area.drv.Stat(c.ctx, loc.Name); err != nil {
					st.Status = rs(fsStatus(err))
				} else {
					st.Status, st.FileLifetime = rs(SRM_SUCCESS, "nothing to do: the SURL is permanent"), i64(-1)
					ok++
				}
			}
			resp.Files.Items = append(resp.Files.Items, st)
		}
		resp.ReturnStatus = rs(summarize(ok, len(surls)), "")
		return resp, nil
	}
	r, files, stt := s.lookup(c, req, "")
	if stt != nil {
		return extendResponse{ReturnStatus: *stt}, nil
	}
	want, err := req.Int("newPinLifeTime", 0)
	if err != nil || want <= 0 {
		return bad("newPinLifeTime must be a positive number of seconds")
	}
	want = min(want, int64(s.cfg.Engine.MaxPinLifetime/time.Second))
	exp := time.Now().Unix() + want
	var changed []*file
	res := s.fileOp(c, r, files, req, true, func(f *file) TReturnStatus {
		switch StatusCode(f.Status) {
		case SRM_FILE_PINNED, SRM_SPACE_AVAILABLE:
		case SRM_SUCCESS:
			if r.Type != typeBoL {
				return rs(SRM_INVALID_REQUEST, "no TURL available")
			}
		default:
			return rs(SRM_INVALID_REQUEST, "lifetime cannot be extended in state "+StatusCode(f.Status).String())
		}
		f.PinExpires = exp
		changed = append(changed, f)
		return rs(SRM_SUCCESS, "")
	})
	for _, it := range res.Files.Items {
		ls := lifetimeStatus{SURL: it.SURL, Status: it.Status}
		if it.Status.StatusCode == SRM_SUCCESS.String() {
			ls.PinLifetime = i64(want)
		}
		resp.Files.Items = append(resp.Files.Items, ls)
	}
	if err := s.engine.s.db.InTx(c.ctx, func(tx *sqlx.Tx) error {
		for _, f := range changed {
			if _, err := tx.ExecContext(c.ctx, "UPDATE srm_files SET pin_expires = ? WHERE id = ? AND status = ?", f.PinExpires, f.ID, f.Status); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return extendResponse{ReturnStatus: rs(SRM_INTERNAL_ERROR, "could not extend: retry")}, nil
	}
	resp.ReturnStatus = res.ReturnStatus
	return resp, nil
}

func (s *Server) getRequestTokens(c *call, req *node) (any, error) {
	desc := req.Str("userRequestDescription")
	q := "SELECT token, created FROM srm_requests WHERE client_dn = ?"
	args := []any{c.id.DN}
	if desc != "" {
		q += " AND user_desc = ?"
		args = append(args, desc)
	}
	var rows []struct {
		Token   string `db:"token"`
		Created int64  `db:"created"`
	}
	if err := s.db.SelectContext(c.ctx, &rows, q+" ORDER BY id DESC LIMIT 10000", args...); err != nil {
		return requestTokensResponse{ReturnStatus: rs(SRM_INTERNAL_ERROR, "could not read requests: retry")}, nil
	}
	if len(rows) == 0 {
		return requestTokensResponse{ReturnStatus: rs(SRM_INVALID_REQUEST, "no requests found")}, nil
	}
	resp := requestTokensResponse{ReturnStatus: rs(SRM_SUCCESS, "")}
	resp.Tokens = &struct {
		Items []tokenReturn `xml:"tokenArray"`
	}{}
	for _, r := range rows {
		resp.Tokens.Items = append(resp.Tokens.Items, tokenReturn{r.Token, xsdTime(time.Unix(r.Created, 0))})
	}
	return resp, nil
}

func (s *Server) getRequestSummary(c *call, req *node) (any, error) {
	toks := req.Strings("arrayOfRequestTokens", "stringArray")
	if len(toks) == 0 {
		return requestSummaryResponse{ReturnStatus: rs(SRM_INVALID_REQUEST, "arrayOfRequestTokens is empty")}, nil
	}
	resp := requestSummaryResponse{}
	resp.Summaries = &struct {
		Items []requestSummary `xml:"summaryArray"`
	}{}
	ok := 0
	names := map[string]string{typeGet: "PREPARE_TO_GET", typePut: "PREPARE_TO_PUT", typeBoL: "BRING_ONLINE"}
	for _, t := range toks {
		r, files, err := s.engine.byToken(c.ctx, t)
		if err != nil || r == nil || r.DN != c.id.DN {
			resp.Summaries.Items = append(resp.Summaries.Items, requestSummary{RequestToken: t, Status: rs(SRM_INVALID_REQUEST, "unknown request token")})
			continue
		}
		var done, wait, failed int64
		for _, f := range files {
			st := StatusCode(f.Status)
			switch {
			case st == SRM_REQUEST_QUEUED || st == SRM_REQUEST_INPROGRESS:
				wait++
			case isOK(r.Type, st):
				done++
			default:
				failed++
			}
		}
		ok++
		resp.Summaries.Items = append(resp.Summaries.Items, requestSummary{RequestToken: t, Status: reqReturn(r), RequestType: names[r.Type],
			Total: i64(int64(len(files))), Completed: i64(done), Waiting: i64(wait), Failed: i64(failed)})
	}
	resp.ReturnStatus = rs(summarize(ok, len(toks)), "")
	return resp, nil
}

func isOK(t string, st StatusCode) bool {
	for _, o := range okStatus(t) {
		if st == o {
			return true
		}
	}
	return false
}
