package srm

import (
	iofs "io/fs"
	"strconv"
	"time"

	"github.com/dynamo-go/dynamo/srm/fs"
)

// Permissions: the SE serves all files as its own process user, so SRM
// permissions are the POSIX mode bits of the file (owner, group = the
// storage area, other), applied with chmod exactly as asked. Per-user and
// per-group entries (what POSIX ACLs would hold) are answered
// SRM_NOT_SUPPORTED: grid identities are not POSIX users here, so an ACL
// entry would protect nothing, and saying SUCCESS for it would be a lie.
// Access is decided by the storage area's admission rules, as in StoRM.

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func (s *Server) setPermission(c *call, req *node) (any, error) {
	loc, code, expl := s.locate(c, req.Str("SURL"), OpWrite)
	if loc == nil {
		return returnOnly{rs(code, expl)}, nil
	}
	fi, err := loc.Area.drv.Stat(c.ctx, loc.Name)
	if err != nil {
		return returnOnly{rs(fsStatus(err))}, nil
	}
	cur := uint32(fi.Mode.Perm())
	var set, mask uint32 // bits named by the request, and which triplets they cover
	field := func(v string, shift uint) bool {
		if v == "" {
			return true
		}
		b, ok := parsePermMode(v)
		if !ok {
			return false
		}
		set |= b << shift
		mask |= 7 << shift
		return true
	}
	if len(req.Child("arrayOfUserPermissions").All("userPermissionArray")) > 0 {
		return returnOnly{rs(SRM_NOT_SUPPORTED, "per-user permissions (ACL entries) are not supported: access is decided by the storage area's rules")}, nil
	}
	group := ""
	groups := req.Child("arrayOfGroupPermissions").All("groupPermissionArray")
	switch {
	case len(groups) > 1:
		return returnOnly{rs(SRM_NOT_SUPPORTED, "per-group permissions (ACL entries) are not supported: only the storage area's group ("+loc.Area.Config.Name+") has a mode")}, nil
	case len(groups) == 1:
		if id := groups[0].Str("groupID"); id != "" && id != loc.Area.Config.Name {
			return returnOnly{rs(SRM_NOT_SUPPORTED, "per-group permissions (ACL entries) are not supported: only the storage area's group ("+loc.Area.Config.Name+") has a mode")}, nil
		}
		group = groups[0].Str("mode")
	case req.Has("arrayOfGroupPermissions") && req.Str("permissionType") != "ADD" && req.Str("permissionType") != "REMOVE":
		// CHANGE with an empty group list (what gfal-chmod sends: srm-ifce
		// does not transmit group bits) means no group permission.
		group = "NONE"
	}
	if !field(req.Str("ownerPermission"), 6) || !field(group, 3) || !field(req.Str("otherPermission"), 0) {
		return returnOnly{rs(SRM_INVALID_REQUEST, "permission modes must be NONE, X, W, WX, R, RX, RW or RWX")}, nil
	}
	var mode uint32
	switch req.Str("permissionType") {
	case "CHANGE", "":
		mode = cur&^mask | set
	case "ADD":
		mode = cur | set
	case "REMOVE":
		mode = cur &^ set
	default:
		return returnOnly{rs(SRM_INVALID_REQUEST, "permissionType must be ADD, REMOVE or CHANGE")}, nil
	}
	if err := loc.Area.drv.Chmod(c.ctx, loc.Name, iofs.FileMode(mode)); err != nil {
		return returnOnly{rs(fsStatus(err))}, nil
	}
	return returnOnly{rs(SRM_SUCCESS, "")}, nil
}

func (s *Server) checkPermission(c *call, req *node) (any, error) {
	surls := req.Strings("arrayOfSURLs", "urlArray")
	if len(surls) == 0 {
		return checkPermissionResponse{ReturnStatus: rs(SRM_INVALID_REQUEST, "arrayOfSURLs is empty")}, nil
	}
	resp := checkPermissionResponse{}
	resp.Perms = &struct {
		Items []surlPermissionReturn `xml:"surlPermissionArray"`
	}{}
	ok := 0
	for _, surl := range surls {
		loc, code, expl := s.locate(c, surl, OpList)
		if loc == nil {
			resp.Perms.Items = append(resp.Perms.Items, surlPermissionReturn{SURL: surl, Status: rs(code, expl)})
			continue
		}
		fi, err := loc.Area.drv.Stat(c.ctx, loc.Name)
		if err != nil {
			resp.Perms.Items = append(resp.Perms.Items, surlPermissionReturn{SURL: surl, Status: rs(fsStatus(err))})
			continue
		}
		var bits uint32
		if loc.Area.Authorize(c.id, OpRead) {
			bits |= 4
		}
		if loc.Area.Authorize(c.id, OpWrite) {
			bits |= 2
		}
		if fi.IsDir() {
			bits |= 1 // list was authorized by locate
		}
		ok++
		resp.Perms.Items = append(resp.Perms.Items, surlPermissionReturn{SURL: surl, Status: rs(SRM_SUCCESS, ""), Permission: permMode(bits)})
	}
	resp.ReturnStatus = rs(summarize(ok, len(surls)), "")
	return resp, nil
}

func (s *Server) getPermission(c *call, req *node) (any, error) {
	surls := req.Strings("arrayOfSURLs", "urlArray")
	if len(surls) == 0 {
		return getPermissionResponse{ReturnStatus: rs(SRM_INVALID_REQUEST, "arrayOfSURLs is empty")}, nil
	}
	resp := getPermissionResponse{}
	resp.Perms = &struct {
		Items []permissionReturn `xml:"permissionArray"`
	}{}
	ok := 0
	for _, surl := range surls {
		loc, code, expl := s.locate(c, surl, OpList)
		if loc == nil {
			resp.Perms.Items = append(resp.Perms.Items, permissionReturn{SURL: surl, Status: rs(code, expl)})
			continue
		}
		fi, err := loc.Area.drv.Stat(c.ctx, loc.Name)
		if err != nil {
			resp.Perms.Items = append(resp.Perms.Items, permissionReturn{SURL: surl, Status: rs(fsStatus(err))})
			continue
		}
		ok++
		p := uint32(fi.Mode.Perm())
		resp.Perms.Items = append(resp.Perms.Items, permissionReturn{SURL: surl, Status: rs(SRM_SUCCESS, ""),
			Owner: "dynamo", OwnerPermission: permMode(p >> 6), OtherPermission: permMode(p)})
	}
	resp.ReturnStatus = rs(summarize(ok, len(surls)), "")
	return resp, nil
}

func (s *Server) getSpaceTokens(c *call, req *node) (any, error) {
	desc := req.Str("userSpaceTokenDescription")
	var toks []string
	for _, a := range s.ns.Areas() {
		if a.Config.SpaceToken == "" {
			continue
		}
		if desc == "" || desc == a.Config.SpaceToken || desc == a.Config.Name {
			toks = append(toks, a.Config.SpaceToken)
		}
	}
	q, args := "SELECT token FROM srm_spaces WHERE owner_dn = ?", []any{c.id.DN}
	if desc != "" {
		q += " AND (description = ? OR token = ?)"
		args = append(args, desc, desc)
	}
	var dyn []string
	if err := s.db.SelectContext(c.ctx, &dyn, q+" ORDER BY created LIMIT 1000", args...); err != nil {
		return spaceTokensResponse{ReturnStatus: rs(SRM_INTERNAL_ERROR, "could not read space reservations: retry")}, nil
	}
	toks = append(toks, dyn...)
	if len(toks) == 0 {
		return spaceTokensResponse{ReturnStatus: rs(SRM_INVALID_REQUEST, "no space token matches "+strconv.Quote(desc))}, nil
	}
	r := spaceTokensResponse{ReturnStatus: rs(SRM_SUCCESS, "")}
	r.Tokens = &struct {
		Items []string `xml:"stringArray"`
	}{toks}
	return r, nil
}

func (s *Server) getSpaceMetaData(c *call, req *node) (any, error) {
	toks := req.Strings("arrayOfSpaceTokens", "stringArray")
	if len(toks) == 0 {
		return spaceMetaDataResponse{ReturnStatus: rs(SRM_INVALID_REQUEST, "arrayOfSpaceTokens is empty")}, nil
	}
	r := spaceMetaDataResponse{}
	r.Spaces = &struct {
		Items []metaDataSpace `xml:"spaceDataArray"`
	}{}
	ok := 0
	for _, t := range toks {
		a := s.ns.AreaByToken(t)
		if a == nil {
			sp, err := s.spaceByToken(c.ctx, t)
			if err != nil || sp == nil || s.ns.areaByName(sp.Area) == nil {
				r.Spaces.Items = append(r.Spaces.Items, metaDataSpace{SpaceToken: t, Status: rs(SRM_INVALID_REQUEST, "unknown space token")})
				continue
			}
			ok++
			sa := s.ns.areaByName(sp.Area)
			life, left := int64(-1), int64(-1)
			if sp.Expires > 0 {
				life, left = sp.Expires-sp.Created, max(sp.Expires-time.Now().Unix(), 0)
			}
			r.Spaces.Items = append(r.Spaces.Items, metaDataSpace{SpaceToken: t, Status: rs(SRM_SUCCESS, ""),
				RetentionPolicyInfo: &retentionPolicyInfo{sa.Config.RetentionPolicy, sa.Config.AccessLatency},
				Owner:               sp.Owner, TotalSize: i64(sp.Size), GuaranteedSize: i64(sp.Size), UnusedSize: i64(sp.unused()),
				LifetimeAssigned: i64(life), LifetimeLeft: i64(left)})
			continue
		}
		ok++
		total := a.Config.OnlineSizeLimit
		unused := a.Free()
		if total == 0 { // unlimited: report what is used, nothing reserved
			total = a.Used()
			unused = 0
		}
		r.Spaces.Items = append(r.Spaces.Items, metaDataSpace{SpaceToken: t, Status: rs(SRM_SUCCESS, ""),
			RetentionPolicyInfo: &retentionPolicyInfo{a.Config.RetentionPolicy, a.Config.AccessLatency},
			Owner:               a.Config.Name, TotalSize: i64(total), GuaranteedSize: i64(total), UnusedSize: i64(unused),
			LifetimeAssigned: i64(-1), LifetimeLeft: i64(-1)})
	}
	r.ReturnStatus = rs(summarize(ok, len(toks)), "")
	return r, nil
}

func (s *Server) purgeFromSpace(c *call, req *node) (any, error) {
	surls := req.Strings("arrayOfSURLs", "urlArray")
	if len(surls) == 0 {
		return surlStatuses{ReturnStatus: rs(SRM_INVALID_REQUEST, "arrayOfSURLs is empty")}, nil
	}
	files := &arrayOfSURLStatus{}
	ok := 0
	for _, surl := range surls {
		st := func() TReturnStatus {
			loc, code, expl := s.locate(c, surl, OpDelete)
			if loc == nil {
				return rs(code, expl)
			}
			if tok := req.Str("spaceToken"); tok != "" && tok != loc.Area.Config.SpaceToken {
				return rs(SRM_INVALID_PATH, "SURL is not in space "+tok)
			}
			if s.engine.pinned(c.ctx, loc.StFN) {
				return rs(SRM_FILE_BUSY, "file is pinned by a get or bring-online request")
			}
			st, ok := loc.Area.drv.(fs.Stager)
			if !ok {
				return rs(SRM_LAST_COPY, "the disk copy is the only copy (no tape in this storage area)")
			}
			if err := st.Purge(c.ctx, loc.Name); err != nil {
				if err == fs.ErrLastCopy {
					return rs(SRM_LAST_COPY, err.Error())
				}
				return rs(fsStatus(err))
			}
			return rs(SRM_SUCCESS, "")
		}()
		if st.StatusCode == SRM_SUCCESS.String() {
			ok++
		}
		files.Items = append(files.Items, TSURLReturnStatus{SURL: surl, Status: st})
	}
	return surlStatuses{ReturnStatus: rs(summarize(ok, len(surls)), ""), Files: files}, nil
}
