package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/inventory"
)

// Dynamo's web API (lib/web/server.py) treats GET and POST alike, merges
// the query string with a form or JSON body, writes lists as key[] and
// answers {"result", "message", "data"}. These aliases keep its clients
// working on top of the same store and validation as /api/v1.

const dynamoTime = "2006-01-02 15:04:05 UTC"

func dtime(t int64) string { return time.Unix(t, 0).UTC().Format(dynamoTime) }

// compatParams is the merged parameter set of a Dynamo-style call.
type compatParams struct {
	v    url.Values
	json []byte // the raw body when it was JSON
}

func (p compatParams) one(k string) string { return p.v.Get(k) }

// list returns the values of k, comma lists split.
func (p compatParams) list(k string) []string {
	var out []string
	for _, v := range p.v[k] {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

// readCompatParams merges query and body and rejects parameters the
// endpoint does not know (allowed), naming them.
func readCompatParams(c *gin.Context, allowed ...string) (compatParams, error) {
	p := compatParams{v: url.Values{}}
	add := func(k string, vs ...string) { k = strings.TrimSuffix(k, "[]"); p.v[k] = append(p.v[k], vs...) }
	for k, vs := range c.Request.URL.Query() {
		add(k, vs...)
	}
	if c.Request.Body != nil {
		b, err := io.ReadAll(c.Request.Body)
		if err != nil {
			return p, apierr.ReadError(err)
		}
		ct, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
		trim := bytes.TrimSpace(b)
		switch {
		case len(trim) == 0:
		case ct == "application/json" || trim[0] == '{' || trim[0] == '[':
			p.json = trim
			if trim[0] == '{' {
				var m map[string]json.RawMessage
				if err := decodeJSON(bytes.NewReader(trim), &m); err != nil {
					return p, err
				}
				for k, raw := range m {
					var list []any
					var one any
					if json.Unmarshal(raw, &list) == nil {
						for _, x := range list {
							if _, nested := x.(map[string]any); !nested {
								add(k, fmt.Sprint(x))
							}
						}
					} else if json.Unmarshal(raw, &one) == nil {
						if _, nested := one.(map[string]any); !nested {
							add(k, fmt.Sprint(one))
						} else {
							add(k)
						}
					}
				}
			}
		default:
			form, err := url.ParseQuery(string(trim))
			if err != nil {
				return p, fmt.Errorf("%w: form body: %v", ErrBadRequest, err)
			}
			for k, vs := range form {
				add(k, vs...)
			}
		}
	}
	for k := range p.v {
		if !slices.Contains(allowed, k) {
			return p, &FieldError{Field: k, Code: apierr.CodeUnknownField, Msg: fmt.Sprintf("unknown parameter (this endpoint takes %s)", strings.Join(allowed, ", "))}
		}
	}
	return p, nil
}

func ok(c *gin.Context, msg string, data any) {
	c.JSON(http.StatusOK, gin.H{"result": "OK", "message": msg, "data": data})
}

// dynamoRequest is Request.to_dict.
func dynamoRequest(r Request) map[string]any {
	m := map[string]any{"request_id": r.ID, "item": r.Items, "site": r.Sites, "status": string(r.Status), "user": r.User, "dn": r.DN}
	if r.Kind == KindCopy {
		m["group"], m["n"] = r.Group, r.N
		m["first_request"], m["last_request"], m["request_count"] = dtime(r.FirstRequest), dtime(r.LastRequest), r.RequestCount
	} else {
		m["request_time"] = dtime(r.FirstRequest)
	}
	if r.Status == StatusRejected || r.Status == StatusCancelled {
		m["reason"] = r.Reason
	}
	act := []map[string]any{}
	for _, a := range r.Actions {
		act = append(act, map[string]any{"item": a.Item, "site": a.Site, "status": a.Status, "updated": dtime(a.Updated)})
	}
	m["active"] = act
	return m
}

func dynamoRequests(rs []Request) []map[string]any {
	out := make([]map[string]any, 0, len(rs))
	for _, r := range rs {
		out = append(out, dynamoRequest(r))
	}
	return out
}

func dynamoLock(l Lock) map[string]any {
	m := map[string]any{"lockid": l.ID, "user": l.User, "dn": l.DN, "item": l.Item, "locked": dtime(l.Locked), "expires": dtime(l.Expires)}
	if l.Unlocked != 0 {
		m["unlocked"] = dtime(l.Unlocked)
	}
	if l.Service != "" {
		m["service"] = l.Service
	}
	if len(l.Sites) > 0 {
		m["sites"] = l.Sites
	}
	if len(l.Groups) > 0 {
		m["groups"] = l.Groups
	}
	if l.Comment != "" {
		m["comment"] = l.Comment
	}
	return m
}

func dynamoLocks(ls []Lock) []map[string]any {
	out := make([]map[string]any, 0, len(ls))
	for _, l := range ls {
		out = append(out, dynamoLock(l))
	}
	return out
}

func (s *Server) compatRoutes(h func(method, path, tag, summary string, need Need, query []string, body string, fn gin.HandlerFunc)) {
	both := func(path, summary string, need Need, fn gin.HandlerFunc, aliases ...string) {
		// A route that needs a role writes: GET writes as POST does, so
		// the write fence applies to both.
		need.Writes = need.Role != RoleNone
		for _, p := range append([]string{"/data/" + path}, aliases...) {
			for _, m := range []string{http.MethodGet, http.MethodPost} {
				h(m, p, "dynamo compatibility", summary+" (Dynamo envelope; GET and POST alike)", need, nil, "", fn)
			}
		}
	}
	// Dynamo's registry-mode aliases are kept for the three it documented.
	both("request/copy", "Create a copy request", regUser, s.compatCopy, "/registry/request/copy")
	both("request/pollcopy", "Poll copy requests", anyone, s.compatPoll(KindCopy))
	both("request/cancelcopy", "Cancel a copy request", regUser, s.compatCancel(KindCopy))
	both("request/delete", "Create a deletion request", regUser, s.compatDelete, "/registry/request/delete")
	both("request/polldelete", "Poll deletion requests", anyone, s.compatPoll(KindDeletion))
	both("detox/lock/lock", "Lock data against deletion", regUser, s.compatLock, "/registry/detoxlock/lock")
	both("detox/lock/unlock", "Unlock locks", regUser, s.compatUnlock)
	both("detox/lock/list", "List locks", anyone, s.compatListLocks)
	both("detox/lock/set", "Replace a service's lock set", regUser, s.compatSetLocks)
	both("inventory/sites", "Sites with partitions (TB)", anyone, s.compatSites)
	both("inventory/datasets", "Datasets matching a glob", anyone, s.compatDatasets)
	both("inventory/inject", "Queue an injection", invAdmin, s.compatInject)
	appOperator := Need{Role: RoleOperator, Target: TargetApplication}
	both("applock/check", "Who holds an application's lock (app)", anyone, s.compatAppLockCheck, "/registry/applock/check")
	both("applock/lock", "Queue the caller's lock of an application (app, service?, note?): Success when held, Wait behind another holder", appOperator, s.compatAppLockLock, "/registry/applock/lock")
	both("applock/unlock", "Remove the caller's newest lock of an application (app, service?)", appOperator, s.compatAppLockUnlock, "/registry/applock/unlock")
	both("applock/current", "Every locked application with its holder", anyone, s.compatAppLockCurrent, "/registry/applock/current")
	both("detox/partitions", "Partitions with recorded Detox cycles", anyone, s.compatDetoxPartitions)
	both("detox/cycles", "Detox cycles of a partition, newest first (partition, cycle?, latest?, limit?)", anyone, s.compatDetoxCycles)
	both("detox/summary", "Per-site summary of a Detox cycle: quota, protected, kept, deleted (TB and bytes), previous cycle's protected and kept", anyone, s.compatDetoxSummary)
	both("detox/sitedetail", "Every decision of a Detox cycle at one site with its deciding line (site, partition, cycle?)", anyone, s.compatDetoxSiteDetail)
	both("transfers/history", "File transfer attempts, newest first (site, source, destination: globs; dataset; since; until; outcome; limit; before: paging)", anyone, s.compatFileHistory(fileop.OpTransfer))
	both("deletions/history", "File deletion attempts, newest first (site: globs; dataset; since; until; outcome; limit; before: paging)", anyone, s.compatFileHistory(fileop.OpDeletion))
	both("inventory/groups", "Owner groups (group: glob)", anyone, s.compatGroups)
	for _, st := range []string{"size", "replication", "usage"} {
		both("inventory/stats/"+st, "Inventory statistics: "+st+" by list_by, filtered by category regexps (TB)", anyone, s.compatStats(st))
	}
}

func (s *Server) compatCopy(c *gin.Context) {
	p, err := readCompatParams(c, "item", "site", "group", "n", "request_id", "cache")
	if err != nil {
		s.abort(c, err)
		return
	}
	if p.one("request_id") != "" || p.one("cache") != "" {
		s.abort(c, fieldErr("request_id", "updating requests and cached requests are not supported; create a new request"))
		return
	}
	body := CopyRequestBody{Items: p.list("item"), Sites: p.list("site"), Group: p.one("group")}
	if v := p.one("n"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.abort(c, fieldErr("n", "%q: want an integer", v))
			return
		}
		body.N = &n
	}
	s.compatCreate(c, KindCopy, body)
}

func (s *Server) compatDelete(c *gin.Context) {
	p, err := readCompatParams(c, "item", "site")
	if err != nil {
		s.abort(c, err)
		return
	}
	s.compatCreate(c, KindDeletion, CopyRequestBody{Items: p.list("item"), Sites: p.list("site")})
}

// compatCreate shares validation and storage with /api/v1, answering in
// the envelope.
func (s *Server) compatCreate(c *gin.Context, kind Kind, body CopyRequestBody) {
	r, reused, err := s.doCreate(c, kind, body)
	if err != nil {
		s.abort(c, err)
		return
	}
	msg := "Request created"
	if reused {
		msg = "Request updated"
	}
	ok(c, msg, dynamoRequests([]Request{r}))
}

func (s *Server) compatPoll(kind Kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := readCompatParams(c, "request_id", "item", "site", "status", "user", "all")
		if err != nil {
			s.abort(c, err)
			return
		}
		f := RequestFilter{Kind: kind, Items: p.list("item"), Sites: p.list("site"), Users: p.list("user")}
		for _, v := range p.list("request_id") {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				s.abort(c, fieldErr("request_id", "%q: want an integer", v))
				return
			}
			f.IDs = append(f.IDs, id)
		}
		for _, v := range p.list("status") {
			st, err := ParseStatus(v)
			if err != nil {
				s.abort(c, fieldErr("status", "%v", err))
				return
			}
			f.Statuses = append(f.Statuses, st)
		}
		rs, err := s.store.ListRequests(c.Request.Context(), f)
		if err != nil {
			s.abort(c, err)
			return
		}
		// Dynamo: with item and site but not all, only the latest request.
		if len(f.Items) > 0 && len(f.Sites) > 0 && p.one("all") == "" && len(rs) > 1 {
			rs = rs[len(rs)-1:]
		}
		ok(c, "", dynamoRequests(rs))
	}
}

func (s *Server) compatCancel(kind Kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := readCompatParams(c, "request_id")
		if err != nil {
			s.abort(c, err)
			return
		}
		id, err := strconv.ParseInt(p.one("request_id"), 10, 64)
		if err != nil || id <= 0 {
			s.abort(c, fieldErr("request_id", "%q: want a request id", p.one("request_id")))
			return
		}
		r, err := s.doCancel(c, kind, id)
		if err != nil {
			s.abort(c, err)
			return
		}
		ok(c, "Request cancelled", dynamoRequest(r))
	}
}

func (s *Server) compatLock(c *gin.Context) {
	p, err := readCompatParams(c, "item", "expires", "sites", "groups", "comment", "service")
	if err != nil {
		s.abort(c, err)
		return
	}
	b := LockBody{Item: p.one("item"), Sites: p.list("sites"), Groups: p.list("groups"), Comment: p.one("comment"), Service: p.one("service")}
	if v := p.one("expires"); v != "" {
		t, err := ParseTime(v)
		if err != nil {
			s.abort(c, fieldErr("expires", "%v", err))
			return
		}
		b.Expires = Time{t}
	}
	spec, err := s.lockSpec("", b)
	if err != nil {
		s.abort(c, err)
		return
	}
	pr := principalOf(c)
	l, updated, err := s.store.AddLock(c.Request.Context(), spec, pr.Name(), pr.DN, s.now())
	if err != nil {
		s.abort(c, err)
		return
	}
	msg := "Lock created"
	if updated {
		msg = "Lock updated"
	}
	ok(c, msg, dynamoLocks([]Lock{l}))
}

var compatLockParams = []string{"lockid", "item", "sites", "groups", "service", "created_before", "created_after", "expires_before", "expires_after"}

func compatLockFilter(p compatParams) (LockFilter, error) {
	f := LockFilter{Item: p.one("item"), Sites: p.list("sites"), Groups: p.list("groups"), Users: p.list("user")}
	if _, ok := p.v["service"]; ok {
		v := p.one("service")
		f.Service = &v
	}
	for _, v := range p.list("lockid") {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return f, fieldErr("lockid", "%q: want an integer", v)
		}
		f.IDs = append(f.IDs, id)
	}
	for _, tf := range []struct {
		name string
		dst  *int64
	}{{"created_before", &f.CreatedBefore}, {"created_after", &f.CreatedAfter}, {"expires_before", &f.ExpiresBefore}, {"expires_after", &f.ExpiresAfter}} {
		if v := p.one(tf.name); v != "" {
			t, err := ParseTime(v)
			if err != nil {
				return f, fieldErr(tf.name, "%v", err)
			}
			*tf.dst = t.Unix()
		}
	}
	return f, nil
}

func (s *Server) compatUnlock(c *gin.Context) {
	p, err := readCompatParams(c, compatLockParams...)
	if err != nil {
		s.abort(c, err)
		return
	}
	f, err := compatLockFilter(p)
	if err != nil {
		s.abort(c, err)
		return
	}
	out, err := s.doUnlock(c, f, "")
	if err != nil {
		s.abort(c, err)
		return
	}
	ok(c, fmt.Sprintf("Unlocked %d locks", len(out)), dynamoLocks(out))
}

func (s *Server) compatListLocks(c *gin.Context) {
	p, err := readCompatParams(c, append([]string{"user", "showall"}, compatLockParams...)...)
	if err != nil {
		s.abort(c, err)
		return
	}
	f, err := compatLockFilter(p)
	if err != nil {
		s.abort(c, err)
		return
	}
	f.History = p.one("showall") != "" && p.one("showall") != "0" && p.one("showall") != "false"
	ls, err := s.store.ListLocks(c.Request.Context(), f, s.now())
	if err != nil {
		s.abort(c, err)
		return
	}
	ok(c, "", dynamoLocks(ls))
}

func (s *Server) compatSetLocks(c *gin.Context) {
	p, err := readCompatParams(c, "service")
	if err != nil {
		s.abort(c, err)
		return
	}
	service := p.one("service")
	if service == "" {
		s.abort(c, fieldErr("service", "missing"))
		return
	}
	if len(p.json) == 0 || p.json[0] != '[' {
		s.abort(c, fieldErr("body", "want a JSON list of {item, expires, sites?, groups?, comment?}"))
		return
	}
	var raw []struct {
		Item    string   `json:"item"`
		Expires string   `json:"expires"`
		Sites   []string `json:"sites,omitempty"`
		Groups  []string `json:"groups,omitempty"`
		Comment string   `json:"comment,omitempty"`
	}
	if err := decodeJSON(bytes.NewReader(p.json), &raw); err != nil {
		s.abort(c, err)
		return
	}
	body := make([]LockBody, len(raw))
	for i, r := range raw {
		t, err := ParseTime(r.Expires)
		if err != nil {
			s.abort(c, fieldErr(fmt.Sprintf("[%d].expires", i), "%v", err))
			return
		}
		body[i] = LockBody{Item: r.Item, Expires: Time{t}, Sites: r.Sites, Groups: r.Groups, Comment: r.Comment}
	}
	out, err := s.doSetLocks(c, service, body)
	if err != nil {
		s.abort(c, err)
		return
	}
	ok(c, fmt.Sprintf("%d locks set", len(out)), dynamoLocks(out))
}

const tb = 1e12

func (s *Server) compatSites(c *gin.Context) {
	p, err := readCompatParams(c, "site", "partition")
	if err != nil {
		s.abort(c, err)
		return
	}
	snap, err := s.snapshot()
	if err != nil {
		s.abort(c, err)
		return
	}
	var sitePats, partPats []*glob.Pattern
	for field, dst := range map[string]*[]*glob.Pattern{"site": &sitePats, "partition": &partPats} {
		for _, g := range p.list(field) {
			pat, err := glob.Compile(g)
			if err != nil {
				s.abort(c, fieldErr(field, "%v", err))
				return
			}
			*dst = append(*dst, pat)
		}
	}
	matchAny := func(ps []*glob.Pattern, name string) bool {
		if len(ps) == 0 {
			return true
		}
		return slices.ContainsFunc(ps, func(p *glob.Pattern) bool { return p.Match(name) })
	}
	out := []map[string]any{}
	for _, v := range s.listSites(snap, nil, nil) {
		if !matchAny(sitePats, v.Name) {
			continue
		}
		site, _ := snap.SiteByName(v.Name)
		parts := []map[string]any{}
		for _, pu := range v.Partitions {
			if !matchAny(partPats, pu.Name) {
				continue
			}
			typ := "basic"
			if pu.Composite {
				typ = "composite"
			}
			parts = append(parts, map[string]any{"name": pu.Name, "type": typ, "quota": float64(pu.Quota) / tb,
				"usage": float64(pu.Used) / tb, "projected_usage": float64(pu.Projected) / tb})
		}
		out = append(out, map[string]any{"name": v.Name, "host": site.Host, "storage_type": v.StorageType, "status": v.Status,
			"partitions": parts, "total_quota": float64(v.TotalQuota) / tb, "total_usage": float64(v.TotalUsed) / tb,
			"total_projected_usage": float64(v.TotalProjected) / tb})
	}
	ok(c, "", out)
}

func (s *Server) compatDatasets(c *gin.Context) {
	p, err := readCompatParams(c, "dataset")
	if err != nil {
		s.abort(c, err)
		return
	}
	snap, err := s.snapshot()
	if err != nil {
		s.abort(c, err)
		return
	}
	pattern := p.one("dataset")
	if pattern == "" {
		s.abort(c, fieldErr("dataset", "missing; give a dataset name or glob"))
		return
	}
	pat, err := glob.Compile(pattern)
	if err != nil {
		s.abort(c, fieldErr("dataset", "%v", err))
		return
	}
	out := []map[string]any{}
	emit := func(d inventory.Dataset) {
		out = append(out, map[string]any{"name": d.Name, "size": d.Size, "num_files": d.NumFiles, "status": d.Status.String(), "type": d.DataType.String()})
	}
	if !glob.HasMeta(pattern) {
		if d, found := snap.DatasetByName(pattern); found {
			emit(d)
		}
	} else {
		for d := range snap.DatasetsByName(glob.LiteralPrefix(pattern), "", pat.Match) {
			emit(d)
		}
	}
	ok(c, "", out)
}

func (s *Server) compatInject(c *gin.Context) {
	p, err := readCompatParams(c, "dataset", "site", "group", "datasetreplica", "sites", "groups", "datasets", "dataset_replicas", "block_replicas")
	if err != nil {
		s.abort(c, err)
		return
	}
	if _, err := s.snapshot(); err != nil {
		s.abort(c, err)
		return
	}
	if len(p.json) == 0 || p.json[0] != '{' {
		s.abort(c, fieldErr("body", "want a JSON injection document"))
		return
	}
	doc, err := decodeDynamoInject(p.json)
	if err != nil {
		s.abort(c, err)
		return
	}
	in, err := s.store.QueueInjection(c.Request.Context(), doc, principalOf(c).Name(), s.now())
	if err != nil {
		s.abort(c, err)
		return
	}
	ok(c, fmt.Sprintf("Data will be injected in the regular update cycle (injection %d)", in.ID), map[string]int{
		"site": len(doc.Sites), "group": len(doc.Groups), "dataset": len(doc.Datasets), "datasetreplica": len(doc.DatasetReplicas)})
}
