package srm

import (
	"context"
	"encoding/xml"
	iofs "io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/srm/fs"
)

func davName(local string) xml.Name { return xml.Name{Space: davNS, Local: local} }

var (
	propResourceType  = davName("resourcetype")
	propContentLength = davName("getcontentlength")
	propLastModified  = davName("getlastmodified")
	propCreationDate  = davName("creationdate")
	propETag          = davName("getetag")
	propContentType   = davName("getcontenttype")
	propQuotaUsed     = davName("quota-used-bytes")
	propQuotaFree     = davName("quota-available-bytes")
)

// protectedProps are computed by the server: PROPPATCH may not set or
// remove them (RFC 4918 §9.2, DAV:cannot-modify-protected-property).
var protectedProps = map[xml.Name]bool{propResourceType: true, propContentLength: true, propLastModified: true,
	propCreationDate: true, propETag: true, propQuotaUsed: true, propQuotaFree: true,
	davName("lockdiscovery"): true, davName("supportedlock"): true}

// liveProps returns the computed properties of a resource.
func (s *Server) liveProps(a *Area, fi fs.FileInfo, root bool) []davProp {
	created := fi.Ctime
	if created.IsZero() {
		created = fi.ModTime
	}
	props := []davProp{
		{Name: propLastModified, Value: []byte(fi.ModTime.UTC().Format(http.TimeFormat))},
		{Name: propCreationDate, Value: []byte(created.UTC().Format(time.RFC3339))},
	}
	if fi.IsDir() {
		props = append(props, davProp{Name: propResourceType, Value: []byte("<D:collection/>")})
		if !root {
			return props // quotas are per area, reported at its root only
		}
		free := a.Free()
		if free < 0 {
			free = diskFree(a)
		}
		props = append(props, davProp{Name: propQuotaUsed, Value: []byte(strconv.FormatInt(a.Used(), 10))},
			davProp{Name: propQuotaFree, Value: []byte(strconv.FormatInt(free, 10))})
		return props
	}
	return append(props,
		davProp{Name: propResourceType},
		davProp{Name: propContentLength, Value: []byte(strconv.FormatInt(fi.Size, 10))},
		davProp{Name: propETag, Value: []byte(davXMLEscape(etag(fi)))},
		davProp{Name: propContentType, Value: []byte("application/octet-stream")})
}

// davHref is the escaped href of a resource; collections end in "/".
func davHref(stfn string, dir bool) string {
	h := (&url.URL{Path: stfn}).EscapedPath()
	if dir && !strings.HasSuffix(h, "/") {
		h += "/"
	}
	return h
}

func (s *Server) davPropfind(w http.ResponseWriter, r *http.Request, loc *Location) {
	ctx := r.Context()
	if !s.allow(w, r, loc, accList, accRead) {
		return
	}
	depth := strings.ToLower(r.Header.Get("Depth"))
	switch depth {
	case "0", "1":
	default: // absent means infinity (RFC 4918 §9.1)
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?>` + "\n" + `<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>` + "\n"))
		return
	}
	req, err := parsePropfind(r.Body)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	drv := loc.Area.drv
	fi, err := drv.Stat(ctx, loc.Name)
	if err != nil {
		davFSError(w, err)
		return
	}
	if fi.IsLink() {
		httpError(w, http.StatusNotFound, "not found")
		return
	}
	needDead := req.kind != findProp
	for _, n := range req.names {
		if n.Space != davNS || !isLiveName(n) {
			needDead = true
		}
	}
	type entry struct {
		stfn string
		fi   fs.FileInfo
	}
	entries := []entry{{loc.StFN, fi}}
	if depth == "1" && fi.IsDir() {
		kids, err := drv.List(ctx, loc.Name)
		if err != nil {
			davFSError(w, err)
			return
		}
		for _, k := range kids {
			if k.IsLink() || k.Mode&iofs.ModeIrregular != 0 {
				continue // never followed, so not offered
			}
			entries = append(entries, entry{path.Join(loc.StFN, k.Name), k})
		}
	}
	var dead map[string][]davProp
	if needDead {
		dead, err = s.deadPropsUnder(ctx, loc.StFN, depth == "1" && fi.IsDir())
		if err != nil {
			s.log.WithError(err).Error("reading WebDAV properties")
			httpError(w, http.StatusInternalServerError, "could not read the properties: retry")
			return
		}
	}
	ms := newMultistatus()
	for _, e := range entries {
		live := s.liveProps(loc.Area, e.fi, e.stfn == loc.Area.Config.Prefix)
		href := davHref(e.stfn, e.fi.IsDir())
		switch req.kind {
		case findAllProp:
			ms.response(href, propstat{status: 200, props: append(live, dead[e.stfn]...)})
		case findPropName:
			var names []davProp
			for _, p := range append(live, dead[e.stfn]...) {
				names = append(names, davProp{Name: p.Name})
			}
			ms.response(href, propstat{status: 200, props: names})
		default:
			var found, missing []davProp
			for _, n := range req.names {
				if p, ok := findPropValue(live, n); ok {
					found = append(found, p)
				} else if p, ok := findPropValue(dead[e.stfn], n); ok {
					found = append(found, p)
				} else {
					missing = append(missing, davProp{Name: n})
				}
			}
			ms.response(href, propstat{status: 200, props: found}, propstat{status: 404, props: missing})
		}
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	_, _ = w.Write(ms.bytes())
}

var liveNames = map[string]bool{"resourcetype": true, "getcontentlength": true, "getlastmodified": true, "creationdate": true,
	"getetag": true, "getcontenttype": true, "quota-used-bytes": true, "quota-available-bytes": true}

func isLiveName(n xml.Name) bool { return n.Space == davNS && liveNames[n.Local] }

func findPropValue(props []davProp, n xml.Name) (davProp, bool) {
	for _, p := range props {
		if p.Name == n {
			return p, true
		}
	}
	return davProp{}, false
}

// deadPropsUnder returns the dead properties of stfn and, with children,
// of its direct members, in one query.
func (s *Server) deadPropsUnder(ctx context.Context, stfn string, children bool) (map[string][]davProp, error) {
	q, args := "SELECT stfn, ns, name, value FROM srm_dav_props WHERE stfn = ?", []any{stfn}
	if children {
		q, args = q+` OR stfn LIKE ? ESCAPE '!'`, append(args, likePrefix(stfn))
	}
	var rows []propRow
	if err := s.db.SelectContext(ctx, &rows, q+" ORDER BY stfn, ns, name", args...); err != nil {
		return nil, err
	}
	out := map[string][]davProp{}
	for _, r := range rows {
		if r.STFN != stfn && path.Dir(r.STFN) != stfn {
			continue // deeper than one level
		}
		out[r.STFN] = append(out[r.STFN], davProp{Name: xml.Name{Space: r.NS, Local: r.Name}, Value: []byte(r.Value)})
	}
	return out, nil
}

func (s *Server) davProppatch(w http.ResponseWriter, r *http.Request, loc *Location) {
	ctx := r.Context()
	if !s.allow(w, r, loc, accModify) {
		return
	}
	fi, err := loc.Area.drv.Stat(ctx, loc.Name)
	if err != nil {
		davFSError(w, err)
		return
	}
	ops, err := parseProppatch(r.Body)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	// All or nothing: one refused property fails the others with 424.
	var refused, others []davProp
	status := http.StatusForbidden
	for _, op := range ops {
		if protectedProps[op.prop.Name] {
			refused = append(refused, davProp{Name: op.prop.Name})
		} else if len(op.prop.Value) > maxDeadPropBytes {
			refused, status = append(refused, davProp{Name: op.prop.Name}), http.StatusInsufficientStorage
		} else {
			others = append(others, davProp{Name: op.prop.Name})
		}
	}
	if len(refused) == 0 {
		n, err := s.countDeadProps(ctx, loc.StFN)
		if err == nil && n+len(ops) > maxDeadProps {
			refused, others, status = others, nil, http.StatusInsufficientStorage
		}
	}
	href := davHref(loc.StFN, fi.IsDir())
	ms := newMultistatus()
	if len(refused) > 0 {
		ms.response(href, propstat{status: status, props: refused}, propstat{status: 424, props: others})
	} else {
		if err := s.applyPatch(ctx, loc.StFN, ops); err != nil {
			s.log.WithError(err).Error("storing WebDAV properties")
			httpError(w, http.StatusInternalServerError, "could not store the properties: retry")
			return
		}
		ms.response(href, propstat{status: 200, props: others})
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	_, _ = w.Write(ms.bytes())
}
