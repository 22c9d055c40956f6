package registry

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/inventory"
)

// CopyRequestBody is POST /api/v1/copy-requests.
type CopyRequestBody struct {
	Items []string `json:"items"`           // datasets or blocks ("dataset#block")
	Sites []string `json:"sites"`           // site names or globs
	Group string   `json:"group,omitempty"` // default: registry.default_group
	N     *int     `json:"n,omitempty"`     // copies wanted; default 1; 0 = at every listed site
}

// DeletionRequestBody is POST /api/v1/deletion-requests.
type DeletionRequestBody struct {
	Items []string `json:"items"`
	Sites []string `json:"sites"`
}

// checkItems validates request items against the inventory: each must be
// an existing dataset or block.
func checkItems(snap *inventory.Snapshot, field string, items []string) error {
	if len(items) == 0 {
		return fieldErr(field, "at least one dataset or block is required")
	}
	for i, it := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		if strings.Contains(it, "#") {
			if _, _, err := inventory.SplitBlockName(it); err != nil {
				return fieldErr(f, "%v", err)
			}
			if _, ok := snap.BlockByName(it); !ok {
				return fieldErr(f, "no block %q in the inventory", it)
			}
			continue
		}
		if err := inventory.CheckDatasetName(it); err != nil {
			return fieldErr(f, "%v", err)
		}
		if _, ok := snap.DatasetByName(it); !ok {
			return fieldErr(f, "no dataset %q in the inventory", it)
		}
	}
	return nil
}

// expandSites resolves site names and globs to the names of existing
// sites; a name or glob that matches nothing is an error.
func expandSites(snap *inventory.Snapshot, field string, sites []string) ([]string, error) {
	if len(sites) == 0 {
		return nil, fieldErr(field, "at least one site or site glob is required")
	}
	var out []string
	for i, s := range sites {
		f := fmt.Sprintf("%s[%d]", field, i)
		if !glob.HasMeta(s) {
			if err := inventory.CheckSiteName(s); err != nil {
				return nil, fieldErr(f, "%v", err)
			}
			if _, ok := snap.SiteByName(s); !ok {
				return nil, fieldErr(f, "no site %q", s)
			}
			out = append(out, s)
			continue
		}
		p, err := glob.Compile(s)
		if err != nil {
			return nil, fieldErr(f, "%v", err)
		}
		n := 0
		for _, site := range snap.Sites() {
			if p.Match(site.Name) {
				out = append(out, site.Name)
				n++
			}
		}
		if n == 0 {
			return nil, fieldErr(f, "glob %q matches no site", s)
		}
	}
	return dedupe(out), nil
}

func (s *Server) createCopy(c *gin.Context) {
	var body CopyRequestBody
	if err := decodeJSON(c.Request.Body, &body); err != nil {
		s.abort(c, err)
		return
	}
	s.createRequest(c, KindCopy, body)
}

func (s *Server) createRequest(c *gin.Context, kind Kind, body CopyRequestBody) {
	req, reused, err := s.doCreate(c, kind, body)
	if err != nil {
		s.abort(c, err)
		return
	}
	code := http.StatusCreated
	if reused {
		code = http.StatusOK
	}
	c.JSON(code, req)
}

// doCreate validates a request against the inventory (items exist, site
// globs expand to existing sites, group exists, 0 <= n <= sites) and
// stores it, or counts one more of an identical open request.
func (s *Server) doCreate(c *gin.Context, kind Kind, body CopyRequestBody) (Request, bool, error) {
	snap, err := s.snapshot()
	if err != nil {
		return Request{}, false, err
	}
	if err := checkItems(snap, "items", body.Items); err != nil {
		return Request{}, false, err
	}
	sites, err := expandSites(snap, "sites", body.Sites)
	if err != nil {
		return Request{}, false, err
	}
	p := principalOf(c)
	nr := NewRequest{Kind: kind, Items: body.Items, Sites: sites, User: p.Name(), DN: p.DN}
	if kind == KindCopy {
		nr.Group, nr.N = body.Group, 1
		if nr.Group == "" {
			nr.Group = s.cfg.DefaultGroup
		}
		if _, ok := snap.GroupByName(nr.Group); !ok {
			return Request{}, false, fieldErr("group", "no group %q", nr.Group)
		}
		if body.N != nil {
			nr.N = *body.N
		}
		if nr.N < 0 || nr.N > len(sites) {
			return Request{}, false, fieldErr("n", "%d: want 0 (every listed site) to %d (the number of sites)", nr.N, len(sites))
		}
	}
	req, reused, err := s.store.CreateRequest(c.Request.Context(), nr, s.now())
	if err != nil || kind != KindDeletion || req.ApprovedBy != "" || !p.Has(RoleOperator, TargetRegistry) {
		return req, reused, err
	}
	// An operator's deletion request needs no further approval.
	req, err = s.store.ApproveRequest(c.Request.Context(), req.ID, p.Name(), s.now())
	return req, reused, err
}

// approveDeletion lets an operator approve a deletion request that the
// request tracker holds because it reaches beyond its requester's groups.
func (s *Server) approveDeletion(c *gin.Context) {
	id, err := idParam(c, "id")
	if err == nil {
		err = apierr.NoBody(c)
	}
	if err != nil {
		s.abort(c, err)
		return
	}
	if _, err := s.snapshot(); err != nil {
		s.abort(c, err)
		return
	}
	req, err := s.store.ApproveRequest(c.Request.Context(), id, principalOf(c).Name(), s.now())
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, req)
}

func (s *Server) createDeletion(c *gin.Context) {
	var body DeletionRequestBody
	if err := decodeJSON(c.Request.Body, &body); err != nil {
		s.abort(c, err)
		return
	}
	s.createRequest(c, KindDeletion, CopyRequestBody{Items: body.Items, Sites: body.Sites})
}

func idParam(c *gin.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, fieldErr(name, "%q: want a positive integer", c.Param(name))
	}
	return id, nil
}

func (s *Server) getRequest(kind Kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := idParam(c, "id")
		if err != nil {
			s.abort(c, err)
			return
		}
		req, err := s.store.GetRequest(c.Request.Context(), kind, id)
		if err != nil {
			s.abort(c, err)
			return
		}
		c.JSON(http.StatusOK, req)
	}
}

// listParam splits a repeatable, comma-separated query parameter.
func listParam(c *gin.Context, name string) []string {
	var out []string
	for _, v := range c.QueryArray(name) {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

func (s *Server) listRequests(kind Kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		f := RequestFilter{Kind: kind, Users: listParam(c, "user"), Items: listParam(c, "item"), Sites: listParam(c, "site")}
		for _, st := range listParam(c, "status") {
			v, err := ParseStatus(st)
			if err != nil {
				s.abort(c, fieldErr("status", "%v", err))
				return
			}
			f.Statuses = append(f.Statuses, v)
		}
		limit, after, ndjson, err := pageParams(c)
		if err != nil {
			s.abort(c, err)
			return
		}
		if after != "" {
			if f.After, err = strconv.ParseInt(after, 10, 64); err != nil || f.After < 0 {
				s.abort(c, fieldErr("after", "%q: want a request id", after))
				return
			}
		}
		if ndjson {
			// Stream in id-ordered pages so memory stays bounded.
			streamNDJSON(c, func(yield func(Request) bool) {
				n := 0
				for {
					f.Limit = 500
					rs, err := s.store.ListRequests(c.Request.Context(), f)
					if err != nil {
						s.log.WithError(err).Warn("streaming requests")
						return
					}
					for _, r := range rs {
						if n++; (limit > 0 && n > limit) || !yield(r) {
							return
						}
						f.After = r.ID
					}
					if len(rs) < f.Limit {
						return
					}
				}
			})
			return
		}
		f.Limit = limit + 1
		rs, err := s.store.ListRequests(c.Request.Context(), f)
		if err != nil {
			s.abort(c, err)
			return
		}
		page := Page[Request]{Items: rs}
		if len(rs) > limit {
			page.Items = rs[:limit]
			page.Next = strconv.FormatInt(rs[limit-1].ID, 10)
		}
		if page.Items == nil {
			page.Items = []Request{}
		}
		c.JSON(http.StatusOK, page)
	}
}

// cancelRequest cancels a new request. Users may cancel only their own;
// operators of the registry may cancel any.
func (s *Server) cancelRequest(kind Kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := idParam(c, "id")
		if err == nil {
			err = apierr.NoBody(c)
		}
		if err != nil {
			s.abort(c, err)
			return
		}
		req, err := s.doCancel(c, kind, id)
		if err != nil {
			s.abort(c, err)
			return
		}
		c.JSON(http.StatusOK, req)
	}
}

func (s *Server) doCancel(c *gin.Context, kind Kind, id int64) (Request, error) {
	if _, err := s.snapshot(); err != nil {
		return Request{}, err
	}
	req, err := s.store.GetRequest(c.Request.Context(), kind, id)
	if err != nil {
		return Request{}, err
	}
	p := principalOf(c)
	if req.User != p.Name() && !p.Has(RoleOperator, TargetRegistry) {
		return Request{}, fmt.Errorf("%w: %s request %d belongs to %s; only its owner or an operator may cancel it", ErrForbidden, kind, id, req.User)
	}
	return s.store.CancelRequest(c.Request.Context(), kind, id, p.Name(), s.now())
}
