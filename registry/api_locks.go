package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/inventory"
)

// LockBody is POST /api/v1/locks and one element of PUT /api/v1/lock-sets/{service}.
type LockBody struct {
	Item    string   `json:"item"`    // dataset glob ("/A/*/AOD*") or block "dataset#block"
	Expires Time     `json:"expires"` // RFC 3339, YYYY-MM-DD, or unix seconds
	Sites   []string `json:"sites,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Comment string   `json:"comment,omitempty"`
	Service string   `json:"service,omitempty"` // not in lock-set elements (the path names it)
}

// Time is a point in time in JSON: unix seconds, an RFC 3339 string or a
// date (YYYY-MM-DD, midnight UTC). The zero value means "not given".
type Time struct{ time.Time }

// UnmarshalJSON accepts the three forms.
func (t *Time) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		t.Time = time.Unix(n, 0).UTC()
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want unix seconds or a date string")
	}
	v, err := ParseTime(s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// ParseTime parses RFC 3339, "YYYY-MM-DD HH:MM:SS" (UTC), YYYY-MM-DD or unix seconds.
func ParseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02 15:04:05 UTC", "2006-01-02"} {
		if v, err := time.Parse(layout, s); err == nil {
			return v.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339, YYYY-MM-DD or unix seconds", s)
}

// checkLockItem validates a lock item: one block, or a dataset glob.
func checkLockItem(field, item string) error {
	if item == "" {
		return fieldErr(field, "missing; give a dataset glob or a block dataset#block")
	}
	if strings.Contains(item, "#") {
		if _, _, err := inventory.SplitBlockName(item); err != nil {
			return fieldErr(field, "%v", err)
		}
		return nil
	}
	if !strings.HasPrefix(item, "/") || strings.ContainsAny(item, " \t\n") {
		return fieldErr(field, "%q: want a dataset name or glob such as /Primary/*/AOD*", item)
	}
	if _, err := glob.Compile(item); err != nil {
		return fieldErr(field, "%v", err)
	}
	if !glob.HasMeta(item) {
		if err := inventory.CheckDatasetName(item); err != nil {
			return fieldErr(field, "%v", err)
		}
	}
	return nil
}

func (s *Server) lockSpec(prefix string, b LockBody) (LockSpec, error) {
	if err := checkLockItem(prefix+"item", b.Item); err != nil {
		return LockSpec{}, err
	}
	if b.Expires.IsZero() {
		return LockSpec{}, fieldErr(prefix+"expires", "missing")
	}
	if !b.Expires.After(s.now()) {
		return LockSpec{}, fieldErr(prefix+"expires", "%s is not in the future", b.Expires.Format(time.RFC3339))
	}
	for i, site := range b.Sites {
		if err := inventory.CheckSiteName(site); err != nil {
			return LockSpec{}, fieldErr(fmt.Sprintf("%ssites[%d]", prefix, i), "%v", err)
		}
	}
	for i, g := range b.Groups {
		if err := inventory.CheckGroupName(g); err != nil {
			return LockSpec{}, fieldErr(fmt.Sprintf("%sgroups[%d]", prefix, i), "%v", err)
		}
	}
	if len(b.Comment) > 1000 {
		return LockSpec{}, fieldErr(prefix+"comment", "longer than 1000 characters")
	}
	if len(b.Service) > 64 {
		return LockSpec{}, fieldErr(prefix+"service", "longer than 64 characters")
	}
	return LockSpec{Item: b.Item, Expires: b.Expires.Unix(), Sites: b.Sites, Groups: b.Groups, Comment: b.Comment, Service: b.Service}, nil
}

func (s *Server) addLock(c *gin.Context) {
	var body LockBody
	if err := decodeJSON(c.Request.Body, &body); err != nil {
		s.abort(c, err)
		return
	}
	spec, err := s.lockSpec("", body)
	if err != nil {
		s.abort(c, err)
		return
	}
	p := principalOf(c)
	l, updated, err := s.store.AddLock(c.Request.Context(), spec, p.Name(), p.DN, s.now())
	if err != nil {
		s.abort(c, err)
		return
	}
	code := http.StatusCreated
	if updated {
		code = http.StatusOK
	}
	c.JSON(code, l)
}

func (s *Server) lockFilter(c *gin.Context) (LockFilter, error) {
	f := LockFilter{Item: c.Query("item"), Users: listParam(c, "user"), Sites: listParam(c, "site"), Groups: listParam(c, "group"),
		History: c.Query("all") == "true"}
	if v, ok := c.GetQuery("service"); ok {
		f.Service = &v
	}
	if v := c.Query("all"); v != "" && v != "true" && v != "false" {
		return f, fieldErr("all", "%q: want true or false", v)
	}
	for _, tf := range []struct {
		name string
		dst  *int64
	}{{"created_before", &f.CreatedBefore}, {"created_after", &f.CreatedAfter}, {"expires_before", &f.ExpiresBefore}, {"expires_after", &f.ExpiresAfter}} {
		if v := c.Query(tf.name); v != "" {
			t, err := ParseTime(v)
			if err != nil {
				return f, fieldErr(tf.name, "%v", err)
			}
			*tf.dst = t.Unix()
		}
	}
	return f, nil
}

func (s *Server) listLocks(c *gin.Context) {
	f, err := s.lockFilter(c)
	if err != nil {
		s.abort(c, err)
		return
	}
	limit, after, ndjson, err := pageParams(c)
	if err != nil {
		s.abort(c, err)
		return
	}
	if after != "" {
		if f.After, err = strconv.ParseInt(after, 10, 64); err != nil {
			s.abort(c, fieldErr("after", "%q: want a lock id", after))
			return
		}
	}
	if ndjson {
		f.Limit = limit // 0: all
		ls, err := s.store.ListLocks(c.Request.Context(), f, s.now())
		if err != nil {
			s.abort(c, err)
			return
		}
		streamNDJSON(c, func(yield func(Lock) bool) {
			for _, l := range ls {
				if !yield(l) {
					return
				}
			}
		})
		return
	}
	f.Limit = limit + 1
	ls, err := s.store.ListLocks(c.Request.Context(), f, s.now())
	if err != nil {
		s.abort(c, err)
		return
	}
	page := Page[Lock]{Items: ls}
	if len(ls) > limit {
		page.Items, page.Next = ls[:limit], strconv.FormatInt(ls[limit-1].ID, 10)
	}
	c.JSON(http.StatusOK, page)
}

// unlockAllowed restricts an unlock to the caller's own locks unless the
// caller is a registry operator.
func unlockScope(p *Principal, f *LockFilter) {
	if !p.Has(RoleOperator, TargetRegistry) {
		f.Users = []string{p.Name()}
	}
}

func (s *Server) deleteLock(c *gin.Context) {
	id, err := idParam(c, "id")
	if err != nil {
		s.abort(c, err)
		return
	}
	p := principalOf(c)
	ls, err := s.store.ListLocks(c.Request.Context(), LockFilter{IDs: []int64{id}}, s.now())
	if err != nil {
		s.abort(c, err)
		return
	}
	if len(ls) == 0 {
		s.abort(c, fmt.Errorf("%w: no active lock %d", ErrNotFound, id))
		return
	}
	if ls[0].User != p.Name() && !p.Has(RoleOperator, TargetRegistry) {
		s.abort(c, fmt.Errorf("%w: lock %d belongs to %s; only its owner or an operator may remove it", ErrForbidden, id, ls[0].User))
		return
	}
	out, err := s.store.Unlock(c.Request.Context(), LockFilter{IDs: []int64{id}}, s.now())
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, Page[Lock]{Items: out})
}

// UnlockBody is POST /api/v1/locks/unlock: every given field must match.
type UnlockBody struct {
	LockIDs       []int64  `json:"lockids,omitempty"`
	Item          string   `json:"item,omitempty"`
	Sites         []string `json:"sites,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	Service       *string  `json:"service,omitempty"`
	User          string   `json:"user,omitempty"` // operators only: another user's locks
	CreatedBefore Time     `json:"created_before,omitzero"`
	CreatedAfter  Time     `json:"created_after,omitzero"`
	ExpiresBefore Time     `json:"expires_before,omitzero"`
	ExpiresAfter  Time     `json:"expires_after,omitzero"`
}

func (b UnlockBody) filter() LockFilter {
	f := LockFilter{IDs: b.LockIDs, Item: b.Item, Sites: b.Sites, Groups: b.Groups, Service: b.Service}
	if b.User != "" {
		f.Users = []string{b.User}
	}
	for _, x := range []struct {
		t   Time
		dst *int64
	}{{b.CreatedBefore, &f.CreatedBefore}, {b.CreatedAfter, &f.CreatedAfter}, {b.ExpiresBefore, &f.ExpiresBefore}, {b.ExpiresAfter, &f.ExpiresAfter}} {
		if !x.t.IsZero() {
			*x.dst = x.t.Unix()
		}
	}
	return f
}

func (s *Server) unlock(c *gin.Context) {
	var body UnlockBody
	if err := decodeJSON(c.Request.Body, &body); err != nil {
		s.abort(c, err)
		return
	}
	out, err := s.doUnlock(c, body.filter(), body.User)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, Page[Lock]{Items: out})
}

func (s *Server) doUnlock(c *gin.Context, f LockFilter, otherUser string) ([]Lock, error) {
	if len(f.IDs) == 0 && f.Item == "" && len(f.Sites) == 0 && len(f.Groups) == 0 && f.Service == nil && len(f.Users) == 0 &&
		f.CreatedBefore == 0 && f.CreatedAfter == 0 && f.ExpiresBefore == 0 && f.ExpiresAfter == 0 {
		return nil, fieldErr("lockids", "give at least one filter (lockids, item, sites, groups, service, user or a time bound)")
	}
	p := principalOf(c)
	if otherUser != "" && otherUser != p.Name() && !p.Has(RoleOperator, TargetRegistry) {
		return nil, fmt.Errorf("%w: only operators may remove the locks of %s", ErrForbidden, otherUser)
	}
	unlockScope(p, &f)
	out, err := s.store.Unlock(c.Request.Context(), f, s.now())
	if out == nil {
		out = []Lock{}
	}
	return out, err
}

func (s *Server) setLocks(c *gin.Context) {
	service := c.Param("service")
	if service == "" || len(service) > 64 {
		s.abort(c, fieldErr("service", "want 1 to 64 characters"))
		return
	}
	var body []LockBody
	if err := decodeJSON(c.Request.Body, &body); err != nil {
		s.abort(c, err)
		return
	}
	out, err := s.doSetLocks(c, service, body)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, Page[Lock]{Items: out})
}

func (s *Server) doSetLocks(c *gin.Context, service string, body []LockBody) ([]Lock, error) {
	specs := make([]LockSpec, 0, len(body))
	for i, b := range body {
		if b.Service != "" && b.Service != service {
			return nil, fieldErr(fmt.Sprintf("[%d].service", i), "%q differs from the lock set's service %q", b.Service, service)
		}
		b.Service = service
		sp, err := s.lockSpec(fmt.Sprintf("[%d].", i), b)
		if err != nil {
			return nil, err
		}
		specs = append(specs, sp)
	}
	p := principalOf(c)
	return s.store.SetLocks(c.Request.Context(), p.Name(), p.DN, service, specs, s.now())
}
