package srm

import (
	"context"
	"errors"
	iofs "io/fs"
	"path"
	"strings"
	"syscall"

	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// locate parses and resolves a SURL and authorizes op on it. On failure it
// returns the file-level status and explanation to answer with.
func (s *Server) locate(c *call, surl, op string) (*Location, StatusCode, string) {
	u, err := ParseSURL(surl)
	if err != nil {
		return nil, SRM_INVALID_PATH, err.Error()
	}
	loc, err := s.ns.Resolve(u.Path)
	switch {
	case errors.Is(err, ErrEscape):
		return nil, SRM_AUTHORIZATION_FAILURE, err.Error()
	case err != nil:
		return nil, SRM_INVALID_PATH, err.Error()
	}
	if !c.preauthorized && !loc.Area.Authorize(c.id, op) {
		return nil, SRM_AUTHORIZATION_FAILURE, "permission denied: " + op + " in storage area " + loc.Area.Config.Name + " for " + c.id.DN
	}
	return loc, SRM_SUCCESS, ""
}

// fsStatus maps a driver error to an SRM status and explanation. The
// explanations keep the phrases srm-ifce maps to errno ("o such file or
// directory"). They are fixed phrases: a driver's own text (which may name
// internals) never reaches the client.
func fsStatus(err error) (StatusCode, string) {
	switch {
	case errors.Is(err, rootfs.ErrSymlink):
		return SRM_INVALID_PATH, "the path is or crosses a symbolic link, which this storage element does not follow"
	case errors.Is(err, rootfs.ErrEscape), errors.Is(err, rootfs.ErrBadName):
		return SRM_AUTHORIZATION_FAILURE, "the path leaves its storage area or crosses a filesystem boundary"
	case errors.Is(err, rootfs.ErrHardLink):
		return SRM_AUTHORIZATION_FAILURE, "the file has other hard links and is not served"
	case errors.Is(err, rootfs.ErrNotRegular):
		return SRM_INVALID_PATH, "not a regular file"
	case errors.Is(err, rootfs.ErrSizeMismatch):
		return SRM_FAILURE, "the uploaded size differs from the expected size"
	case errors.Is(err, iofs.ErrNotExist):
		return SRM_INVALID_PATH, "No such file or directory"
	// Before ErrExist: syscall.Errno reports ENOTEMPTY as ErrExist too.
	case errors.Is(err, syscall.ENOTEMPTY):
		return SRM_NON_EMPTY_DIRECTORY, "Directory not empty"
	case errors.Is(err, iofs.ErrExist):
		return SRM_DUPLICATION_ERROR, "File exists"
	case errors.Is(err, syscall.ENOTDIR):
		return SRM_INVALID_PATH, "Not a directory"
	case errors.Is(err, syscall.EISDIR):
		return SRM_INVALID_PATH, "Is a directory"
	case errors.Is(err, iofs.ErrPermission):
		return SRM_AUTHORIZATION_FAILURE, "Permission denied on the storage filesystem"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return SRM_NO_FREE_SPACE, "No space left on device"
	case errors.Is(err, fs.ErrNotOnline):
		return SRM_FILE_UNAVAILABLE, fs.ErrNotOnline.Error()
	case errors.Is(err, fs.ErrLastCopy):
		return SRM_FAILURE, fs.ErrLastCopy.Error()
	}
	return SRM_FAILURE, "storage error"
}

func (s *Server) ping(c *call, _ *node) (any, error) {
	r := pingResponse{VersionInfo: "v2.2"}
	r.OtherInfo.Items = []extraInfo{{"backend_type", "dynamo"}, {"backend_version", "dynamo-go"}}
	return r, nil
}

func (s *Server) getTransferProtocols(c *call, _ *node) (any, error) {
	r := getTransferProtocolsResponse{ReturnStatus: rs(SRM_SUCCESS, "")}
	seen := map[string]bool{}
	for _, a := range s.ns.Areas() {
		for _, p := range a.Config.Protocols {
			if !seen[p] {
				seen[p] = true
				r.ProtocolInfo.Items = append(r.ProtocolInfo.Items, protocolInfo{p})
			}
		}
	}
	return r, nil
}

// lsState carries one srmLs call's limits across the recursion.
type lsState struct {
	full   bool
	offset int64
	count  int64
	n      int // entries emitted so far
	max    int
	over   bool
}

func (s *Server) ls(c *call, req *node) (any, error) {
	surls := req.Strings("arrayOfSURLs", "urlArray")
	if len(surls) == 0 {
		return lsResponse{ReturnStatus: rs(SRM_INVALID_REQUEST, "arrayOfSURLs is empty")}, nil
	}
	if req.Has("fileStorageType") {
		return lsResponse{ReturnStatus: rs(SRM_NOT_SUPPORTED, "filtering on fileStorageType is not supported")}, nil
	}
	full, err := req.Bool("fullDetailedList", false)
	if err != nil {
		return nil, err
	}
	all, err := req.Bool("allLevelRecursive", false)
	if err != nil {
		return nil, err
	}
	levels, err := req.Int("numOfLevels", 1)
	if err != nil {
		return nil, err
	}
	offset, err := req.Int("offset", 0)
	if err != nil {
		return nil, err
	}
	count, err := req.Int("count", 0)
	if err != nil {
		return nil, err
	}
	if levels < 0 || offset < 0 || count < 0 {
		return lsResponse{ReturnStatus: rs(SRM_INVALID_REQUEST, "numOfLevels, offset and count must not be negative")}, nil
	}
	if all {
		levels = 1 << 30
	}
	st := &lsState{full: full, offset: offset, count: count, max: s.cfg.MaxLsEntries}
	out := &pathDetails{}
	ok := 0
	for _, surl := range surls {
		d := s.lsOne(c, surl, int(levels), st)
		if d.Status.StatusCode == SRM_SUCCESS.String() {
			ok++
		}
		out.Items = append(out.Items, d)
	}
	resp := lsResponse{ReturnStatus: rs(summarize(ok, len(surls)), ""), Details: out}
	if st.over {
		resp.ReturnStatus = rs(SRM_TOO_MANY_RESULTS, "more than "+itoa(int64(st.max))+" entries: use offset and count to page")
	}
	return resp, nil
}

func (s *Server) lsOne(c *call, surl string, levels int, st *lsState) *pathDetail {
	loc, code, expl := s.locate(c, surl, OpList)
	if loc == nil {
		return &pathDetail{Path: surlPath(surl), Status: rs(code, expl)}
	}
	// Busy first: an upload's file only appears at srmPutDone.
	if s.engine.putBusy(c.ctx, loc.StFN) {
		return &pathDetail{Path: loc.StFN, Status: rs(SRM_FILE_BUSY, "an upload (srmPrepareToPut) of this SURL is in progress")}
	}
	fi, err := loc.Area.drv.Stat(c.ctx, loc.Name)
	if err != nil {
		code, expl := fsStatus(err)
		return &pathDetail{Path: loc.StFN, Status: rs(code, expl)}
	}
	// A stat of one file computes a missing checksum (gfal-sum relies on
	// it); listings only report stored ones, so they stay cheap.
	d := s.detail(c.ctx, loc, loc.StFN, fi, st.full, levels == 0)
	st.n++
	if fi.IsDir() && levels > 0 {
		s.lsChildren(c.ctx, loc, d, levels, st, true)
	}
	return d
}

func (s *Server) lsChildren(ctx context.Context, loc *Location, d *pathDetail, levels int, st *lsState, top bool) {
	kids, err := loc.Area.drv.List(ctx, loc.Name)
	if err != nil {
		code, expl := fsStatus(err)
		d.Status = rs(code, expl)
		return
	}
	if top {
		// offset/count page through the first level of the listing.
		if st.offset >= int64(len(kids)) {
			kids = nil
		} else {
			kids = kids[st.offset:]
		}
		if st.count > 0 && int64(len(kids)) > st.count {
			kids = kids[:st.count]
		}
	}
	d.SubPaths = &pathDetails{}
	for _, k := range kids {
		if st.n >= st.max {
			st.over = true
			return
		}
		st.n++
		child := loc.child(k.Name)
		cd := s.detail(ctx, child, child.StFN, k, st.full, false)
		d.SubPaths.Items = append(d.SubPaths.Items, cd)
		if k.IsDir() && levels > 1 {
			s.lsChildren(ctx, child, cd, levels-1, st, false)
		}
	}
}

func (s *Server) detail(ctx context.Context, loc *Location, stfn string, fi fs.FileInfo, full, computeSum bool) *pathDetail {
	size := fi.Size
	d := &pathDetail{Path: stfn, Status: rs(SRM_SUCCESS, ""), Size: &size, Type: "FILE"}
	switch {
	case fi.IsDir():
		d.Type = "DIRECTORY"
	case fi.IsLink():
		// Listed, never followed: no size, no target metadata.
		d.Type = "LINK"
	default:
		d.FileLocality = fi.Locality.String()
	}
	if !full {
		return d
	}
	a := loc.Area
	d.CreatedAtTime = xsdTime(fi.Ctime)
	d.LastModificationTime = xsdTime(fi.ModTime)
	d.FileStorageType = "PERMANENT"
	d.RetentionPolicyInfo = &retentionPolicyInfo{a.Config.RetentionPolicy, a.Config.AccessLatency}
	if a.Config.SpaceToken != "" {
		d.SpaceTokens = &struct {
			Items []string `xml:"stringArray"`
		}{[]string{a.Config.SpaceToken}}
	}
	d.LifetimeAssign, d.LifetimeLeft = i64(-1), i64(-1)
	perm := uint32(fi.Mode.Perm())
	d.OwnerPermission = &userPermission{UserID: "dynamo", Mode: permMode(perm >> 6)}
	d.GroupPermission = &groupPermission{GroupID: a.Config.Name, Mode: permMode(perm >> 3)}
	d.OtherPermission = permMode(perm)
	if fi.Mode.IsRegular() {
		if ck, ok := a.drv.(fs.Checksummer); ok {
			if sum, err := ck.Adler32(ctx, loc.Name, computeSum); err == nil && sum != "" {
				d.CheckSumType, d.CheckSumValue = "adler32", sum
			}
		}
	}
	return d
}

// surlPath is the best-effort path of an unparsable or unresolvable SURL
// for an error entry.
func surlPath(surl string) string {
	if u, err := ParseSURL(surl); err == nil {
		return u.Path
	}
	return surl
}

func (s *Server) mkdir(c *call, req *node) (any, error) {
	loc, code, expl := s.locate(c, req.Str("SURL"), OpWrite)
	if loc == nil {
		return returnOnly{rs(code, expl)}, nil
	}
	if err := loc.Area.drv.Mkdir(c.ctx, loc.Name); err != nil {
		code, expl := fsStatus(err)
		return returnOnly{rs(code, expl)}, nil
	}
	return returnOnly{rs(SRM_SUCCESS, "")}, nil
}

func (s *Server) rmdir(c *call, req *node) (any, error) {
	loc, code, expl := s.locate(c, req.Str("SURL"), OpDelete)
	if loc == nil {
		return returnOnly{rs(code, expl)}, nil
	}
	recursive, err := req.Bool("recursive", false)
	if err != nil {
		return nil, err
	}
	if loc.StFN == loc.Area.Config.Prefix {
		return returnOnly{rs(SRM_AUTHORIZATION_FAILURE, "the root of a storage area cannot be removed")}, nil
	}
	fi, err := loc.Area.drv.Stat(c.ctx, loc.Name)
	if err != nil {
		code, expl := fsStatus(err)
		return returnOnly{rs(code, expl)}, nil
	}
	if !fi.IsDir() {
		return returnOnly{rs(SRM_INVALID_PATH, "Not a directory")}, nil
	}
	if recursive {
		err = s.removeTree(c.ctx, loc)
	} else {
		err = loc.Area.drv.Remove(c.ctx, loc.Name)
	}
	if err != nil {
		code, expl := fsStatus(err)
		return returnOnly{rs(code, expl)}, nil
	}
	s.forgetProps(c.ctx, loc.StFN)
	return returnOnly{rs(SRM_SUCCESS, "")}, nil
}

// removeTree deletes a directory tree through the driver, keeping the
// area's used space up to date. It descends only into directories: a link
// is removed as a link, and a mount point (listed as irregular) stops the
// removal with an error rather than being crossed. Files with an upload in
// progress stop it too (their directory is not empty).
func (s *Server) removeTree(ctx context.Context, loc *Location) error {
	a := loc.Area
	kids, err := a.drv.List(ctx, loc.Name)
	if err != nil {
		return err
	}
	for _, k := range kids {
		child := loc.child(k.Name)
		if k.IsDir() {
			if err := s.removeTree(ctx, child); err != nil {
				return err
			}
			continue
		}
		if s.engine.putBusy(ctx, child.StFN) {
			return &iofs.PathError{Op: "remove", Path: child.Name, Err: syscall.ENOTEMPTY}
		}
		if err := a.drv.Remove(ctx, child.Name); err != nil {
			return err
		}
		if k.Mode.IsRegular() {
			a.used.Add(-k.Size)
		}
	}
	return a.drv.Remove(ctx, loc.Name)
}

func (s *Server) rm(c *call, req *node) (any, error) {
	surls := req.Strings("arrayOfSURLs", "urlArray")
	if len(surls) == 0 {
		return surlStatuses{ReturnStatus: rs(SRM_INVALID_REQUEST, "arrayOfSURLs is empty")}, nil
	}
	files := &arrayOfSURLStatus{}
	ok := 0
	for _, surl := range surls {
		st := s.rmOne(c, surl)
		if st.StatusCode == SRM_SUCCESS.String() {
			ok++
		}
		files.Items = append(files.Items, TSURLReturnStatus{SURL: surl, Status: st})
	}
	return surlStatuses{ReturnStatus: rs(summarize(ok, len(surls)), ""), Files: files}, nil
}

func (s *Server) rmOne(c *call, surl string) TReturnStatus {
	loc, code, expl := s.locate(c, surl, OpDelete)
	if loc == nil {
		return rs(code, expl)
	}
	// [SRM 2.2, 4.3.2 d,e]: removing a SURL aborts the gets and puts on it,
	// even when the file is missing.
	s.engine.abortSURL(c.ctx, loc.StFN, "File has been removed")
	fi, err := loc.Area.drv.Stat(c.ctx, loc.Name)
	if err != nil {
		return rs(fsStatus(err))
	}
	if fi.IsDir() {
		return rs(SRM_INVALID_PATH, "Is a directory: use srmRmdir")
	}
	if err := loc.Area.drv.Remove(c.ctx, loc.Name); err != nil {
		return rs(fsStatus(err))
	}
	if fi.Mode.IsRegular() {
		loc.Area.used.Add(-fi.Size)
	}
	s.forgetProps(c.ctx, loc.StFN)
	return rs(SRM_SUCCESS, "")
}

func (s *Server) mv(c *call, req *node) (any, error) {
	from, code, expl := s.locate(c, req.Str("fromSURL"), OpDelete)
	if from == nil {
		return returnOnly{rs(code, expl)}, nil
	}
	to, code, expl := s.locate(c, req.Str("toSURL"), OpWrite)
	if to == nil {
		return returnOnly{rs(code, expl)}, nil
	}
	if from.Area != to.Area {
		return returnOnly{rs(SRM_NOT_SUPPORTED, "moving between storage areas is not supported")}, nil
	}
	if from.StFN == from.Area.Config.Prefix {
		return returnOnly{rs(SRM_AUTHORIZATION_FAILURE, "the root of a storage area cannot be moved")}, nil
	}
	if _, err := from.Area.drv.Stat(c.ctx, from.Name); err != nil {
		return returnOnly{rs(fsStatus(err))}, nil
	}
	if s.engine.putBusy(c.ctx, from.StFN) {
		return returnOnly{rs(SRM_FILE_BUSY, "an upload (srmPrepareToPut) of the source is in progress")}, nil
	}
	// Moving onto an existing directory moves into it [SRM 2.2, 4.6.2].
	if fi, err := to.Area.drv.Stat(c.ctx, to.Name); err == nil && fi.IsDir() {
		if to2, err := s.ns.Resolve(path.Join(to.StFN, path.Base(from.StFN))); err == nil {
			to = to2
		}
	}
	if s.engine.putBusy(c.ctx, to.StFN) {
		return returnOnly{rs(SRM_FILE_BUSY, "an upload (srmPrepareToPut) of the target is in progress")}, nil
	}
	if to.StFN == from.StFN || strings.HasPrefix(to.StFN, from.StFN+"/") {
		return returnOnly{rs(SRM_INVALID_PATH, "cannot move a path onto or into itself")}, nil
	}
	if err := from.Area.drv.Rename(c.ctx, from.Name, to.Name); err != nil {
		return returnOnly{rs(fsStatus(err))}, nil
	}
	// WebDAV properties travel with the name.
	if err := s.copyProps(c.ctx, from.StFN, to.StFN, true, true); err != nil {
		s.log.WithError(err).WithField("stfn", to.StFN).Warn("moving WebDAV properties")
	}
	return returnOnly{rs(SRM_SUCCESS, "")}, nil
}
