package registry

import (
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dynamo-go/dynamo/internal/apierr"
)

var (
	anyone     = Need{}
	public     = Need{Public: true}
	regUser    = Need{Role: RoleUser, Target: TargetRegistry}
	invAdmin   = Need{Role: RoleAdmin, Target: TargetInventory}
	pageQuery  = []string{"limit", "after", "format"}
	lockFilter = []string{"item", "user", "service", "site", "group", "all", "created_before", "created_after", "expires_before", "expires_after", "limit", "after"}
)

// injectRoutes take injection documents, bounded by inject_body_limit
// rather than body_limit.
var injectRoutes = map[string]bool{"/api/v1/injections": true, "/api/v1/injections/sync": true, "/data/inventory/inject": true}

// routes registers every route of the package through handle.
func (s *Server) routes() {
	const v1 = "/api/v1"
	get, post := http.MethodGet, http.MethodPost
	h := func(method, path, tag, summary string, need Need, query []string, body string, fn gin.HandlerFunc) {
		s.handle(routeDoc{Method: method, Path: path, Tag: tag, Summary: summary, Need: need, Query: query, Body: body}, fn)
	}
	h(get, "/healthz", "health", "Liveness: the process serves HTTP", public, nil, "", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	h(get, "/readyz", "health", "Readiness: the inventory is loaded and the database answers within registry.db_timeout", public, nil, "", s.ready)
	metrics := promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{})
	h(get, "/metrics", "health", "Prometheus metrics", anyone, nil, "", gin.WrapH(metrics))
	h(get, v1+"/openapi.json", "meta", "This API's OpenAPI 3 document", anyone, nil, "", func(c *gin.Context) {
		c.JSON(http.StatusOK, s.OpenAPI())
	})

	h(get, v1+"/sites", "inventory", "Sites with quota, used and projected bytes per partition", anyone, []string{"site", "partition"}, "", s.getSites)
	h(get, v1+"/sites/:site", "inventory", "One site with its partitions", anyone, nil, "", s.getSite)
	h(get, v1+"/groups", "inventory", "Owner groups", anyone, nil, "", s.getGroups)
	h(get, v1+"/datasets", "inventory", "Datasets whose name matches a glob (fnmatch), by name; paginated (a page examines at most 100,000 names, so it may hold fewer items than limit, even none, and still have next: follow next until it is absent) or NDJSON", anyone, append([]string{"name"}, pageQuery...), "", s.getDatasets)
	h(get, v1+"/datasets/:name", "inventory", "A dataset (name URL-escaped) with its blocks, block replicas and dataset replicas", anyone, nil, "", s.getDataset)
	h(get, v1+"/datasets/:name/replicas", "inventory", "Replicas of a dataset, summed per site", anyone, nil, "", s.getDatasetReplicas)
	h(get, v1+"/blocks/:name/files", "inventory", "Files of a block (dataset#block, URL-escaped)", anyone, nil, "", s.getBlockFiles)
	h(get, v1+"/usage", "inventory", "Occupancy by site, group or partition", anyone, []string{"by"}, "", s.getUsage)

	for _, k := range []struct {
		kind   Kind
		path   string
		create gin.HandlerFunc
		body   string
	}{
		{KindCopy, v1 + "/copy-requests", s.createCopy, "CopyRequestBody {items, sites, group?, n?}"},
		{KindDeletion, v1 + "/deletion-requests", s.createDeletion, "DeletionRequestBody {items, sites}"},
	} {
		tag := string(k.kind) + " requests"
		h(post, k.path, tag, "Create a "+string(k.kind)+" request (201), or count one more of an identical open request (200)", regUser, nil, k.body, k.create)
		h(get, k.path, tag, "List "+string(k.kind)+" requests by ascending id; paginated or NDJSON", anyone, append([]string{"status", "user", "item", "site"}, pageQuery...), "", s.listRequests(k.kind))
		h(get, k.path+"/:id", tag, "One "+string(k.kind)+" request with its actions", anyone, nil, "", s.getRequest(k.kind))
		h(post, k.path+"/:id/cancel", tag, "Cancel a "+string(k.kind)+" request (owner or operator): a copy request while new or activated (its transfers are cancelled and incomplete replicas removed), a deletion request while new", regUser, nil, "", s.cancelRequest(k.kind))
	}
	h(post, v1+"/deletion-requests/:id/approve", "deletion requests", "Approve a new deletion request outside its requester's group scope (operators)",
		Need{Role: RoleOperator, Target: TargetRegistry}, nil, "", s.approveDeletion)

	h(post, v1+"/locks", "detox locks", "Lock a dataset glob or block against deletion until expires (201), or extend the caller's identical lock (200)", regUser, nil, "LockBody {item, expires, sites?, groups?, comment?, service?}", s.addLock)
	h(get, v1+"/locks", "detox locks", "Active locks (all=true: with unlocked and expired history)", anyone, lockFilter, "", s.listLocks)
	h(http.MethodDelete, v1+"/locks/:id", "detox locks", "Unlock one lock (owner or operator)", regUser, nil, "", s.deleteLock)
	h(post, v1+"/locks/unlock", "detox locks", "Unlock the caller's locks matching every given filter (operators: anyone's)", regUser, nil, "UnlockBody", s.unlock)
	h(http.MethodPut, v1+"/lock-sets/:service", "detox locks", "Replace the caller's whole lock set of a service atomically", regUser, nil, "[LockBody]", s.setLocks)

	h(post, v1+"/injections", "injection", "Queue an injection document for the inventory writer (202)", invAdmin, nil, "inventory.InjectDoc", s.queueInjection)
	h(post, v1+"/injections/sync", "injection", "Apply an injection document now, in one inventory write", invAdmin, nil, "inventory.InjectDoc", s.injectSync)
	h(get, v1+"/injections/:id", "injection", "State of a queued injection", anyone, nil, "", s.getInjection)

	s.sessionRoutes(h)
	s.compatRoutes(h)
}

var pathParam = regexp.MustCompile(`[:*]([A-Za-z_]+)`)

// OpenAPI returns the OpenAPI 3 document of every registered route,
// including those added with Mount.
func (s *Server) OpenAPI() map[string]any {
	s.mu.RLock()
	docs := append([]routeDoc(nil), s.docs...)
	s.mu.RUnlock()
	sort.SliceStable(docs, func(i, j int) bool { return docs[i].Path < docs[j].Path })
	paths := map[string]map[string]any{}
	errResp := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}
	}
	for _, d := range docs {
		p := pathParam.ReplaceAllString(d.Path, "{$1}")
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		var params []map[string]any
		for _, m := range pathParam.FindAllStringSubmatch(d.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range d.Query {
			params = append(params, map[string]any{"name": q, "in": "query", "schema": map[string]any{"type": "string"}})
		}
		op := map[string]any{
			"summary": d.Summary, "tags": []string{d.Tag},
			"x-required-role": d.Need.Role.String(), "x-target": string(d.Need.Target),
			"responses": map[string]any{"200": map[string]any{"description": "OK"}, "default": errResp("error (see the Error schema's errorType and code)")},
		}
		switch d.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			// Every write route decodes its body with the one strict
			// decoder (internal/apierr), whatever component serves it.
			resp := op["responses"].(map[string]any)
			resp["400"] = errResp("bad input: unknown_field, wrong_type, invalid_json, trailing_data, empty_body or invalid_value, naming the field")
			resp["413"] = errResp("body over the limit (registry.body_limit; inject_body_limit for injection documents): body_too_large")
		}
		if d.Need.Role != RoleNone {
			op["security"] = []map[string][]string{{"x509": {}}, {"bearer": {}}}
		}
		if params != nil {
			op["parameters"] = params
		}
		if d.Body != "" {
			op["requestBody"] = map[string]any{"required": true, "description": d.Body,
				"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
		}
		paths[p][strings.ToLower(d.Method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": "dynamo REST API", "version": "1"},
		"paths":   paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"x509":   map[string]any{"type": "mutualTLS", "description": "X.509 client certificate or RFC 3820 proxy"},
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "static service token or JWT"},
			},
			"schemas": map[string]any{"Error": errorSchema()},
		},
	}
}

// errorSchema is the OpenAPI schema of apierr.Body, the body of every
// error answer of every route.
func errorSchema() map[string]any {
	str := func(desc string, enum ...string) map[string]any {
		m := map[string]any{"type": "string", "description": desc}
		if enum != nil {
			m["enum"] = enum
		}
		return m
	}
	return map[string]any{
		"type":     "object",
		"required": []string{"status", "errorType", "code", "error"},
		"properties": map[string]any{
			"status": str("always \"error\"", "error"),
			"errorType": str("the class of the error, one per HTTP status (not_writer: 503 from a standby, retry at the holder)",
				apierr.TypeBadRequest, apierr.TypeUnauthenticated, apierr.TypeForbidden, apierr.TypeNotFound, apierr.TypeConflict,
				apierr.TypeTooLarge, apierr.TypeUnavailable, apierr.TypeNotWriter, apierr.TypeInternal),
			"code": str("the specific cause, stable for programs: the errorType itself, or one of " + strings.Join([]string{
				apierr.CodeUnknownField, apierr.CodeWrongType, apierr.CodeInvalidJSON, apierr.CodeTrailingData,
				apierr.CodeEmptyBody, apierr.CodeBodyTooLarge, apierr.CodeInvalidValue, "not_leader", "paused"}, ", ")),
			"error":          str("what is wrong, for people; never a physical path or a database driver's text"),
			"field":          str("the offending field: a JSON path (items[2], expires) or a query or form parameter"),
			"holder":         str("who holds the inventory writer lease or the scheduler's lead (not_writer, not_leader)"),
			"holder_address": str("where the writer lease holder serves (not_writer)"),
		},
	}
}
