package registry

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/inventory"
)

// PartitionUsage is a site partition's quota and occupancy in bytes.
type PartitionUsage struct {
	Name      string `json:"name"`
	Composite bool   `json:"composite,omitempty"` // a union of sub-partitions
	Quota     int64  `json:"quota"`
	Used      int64  `json:"used"`
	Projected int64  `json:"projected"`
}

// SiteView is a site with its partitions (GET /api/v1/sites).
type SiteView struct {
	Name           string           `json:"name"`
	Host           string           `json:"host,omitempty"`
	StorageType    string           `json:"storage_type"`
	Backend        string           `json:"backend,omitempty"`
	Status         string           `json:"status"`
	Partitions     []PartitionUsage `json:"partitions"`
	TotalQuota     int64            `json:"total_quota"`
	TotalUsed      int64            `json:"total_used"`
	TotalProjected int64            `json:"total_projected"`
	PendingDelete  int64            `json:"pending_deletion"`
}

// DatasetView is a dataset in lists.
type DatasetView struct {
	Name            string `json:"name"`
	Status          string `json:"status"`
	DataType        string `json:"data_type"`
	SoftwareVersion string `json:"software_version,omitempty"`
	Size            int64  `json:"size"`
	NumBlocks       int32  `json:"num_blocks"`
	NumFiles        int32  `json:"num_files"`
	Open            bool   `json:"is_open"`
	LastUpdate      int64  `json:"last_update"`
}

// BlockReplicaView is one block at one site.
type BlockReplicaView struct {
	Site            string `json:"site"`
	Group           string `json:"group"`
	Complete        bool   `json:"is_complete"`
	Custodial       bool   `json:"is_custodial"`
	PendingDeletion bool   `json:"pending_deletion,omitempty"`
	Size            int64  `json:"size"`
	NumFiles        int32  `json:"num_files"`
	LastUpdate      int64  `json:"last_update"`
}

// BlockView is a block with its replicas.
type BlockView struct {
	Name       string             `json:"name"`
	Size       int64              `json:"size"`
	NumFiles   int32              `json:"num_files"`
	Open       bool               `json:"is_open"`
	LastUpdate int64              `json:"last_update"`
	Replicas   []BlockReplicaView `json:"replicas"`
}

// DatasetReplicaView is a dataset at a site, summed over its block replicas.
type DatasetReplicaView struct {
	Site      string `json:"site"`
	Group     string `json:"group"`
	Growing   bool   `json:"growing"`
	NumBlocks int    `json:"num_blocks"` // blocks with a replica here
	Size      int64  `json:"size"`       // bytes present
	Complete  bool   `json:"is_complete"`
}

// DatasetDetail is GET /api/v1/datasets/{name}.
type DatasetDetail struct {
	DatasetView
	Blocks   []BlockView          `json:"blocks"`
	Replicas []DatasetReplicaView `json:"replicas"`
}

// UsageRow is one line of GET /api/v1/usage.
type UsageRow struct {
	Key       string `json:"key"`
	Quota     int64  `json:"quota,omitempty"`
	Used      int64  `json:"used"`
	Projected int64  `json:"projected"`
	Replicas  int64  `json:"block_replicas,omitempty"`
}

// Page is the shape of every paginated list: Next, when set, is the value
// to pass as ?after= for the following page.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

func siteView(snap *inventory.Snapshot, site inventory.Site, parts []inventory.Partition) SiteView {
	v := SiteView{Name: site.Name, Host: site.Host, StorageType: site.StorageType.String(), Backend: site.Backend,
		Status: site.Status.String(), Partitions: []PartitionUsage{}, PendingDelete: snap.PendingDeletion(site.ID)}
	for _, p := range parts {
		u := snap.Usage(site.ID, p.ID)
		v.Partitions = append(v.Partitions, PartitionUsage{Name: p.Name, Composite: len(p.Subs) > 0, Quota: u.Quota, Used: u.Physical, Projected: u.Projected})
		if len(p.Subs) == 0 { // a super-partition repeats its subs
			v.TotalQuota += u.Quota
			v.TotalUsed += u.Physical
			v.TotalProjected += u.Projected
		}
	}
	return v
}

// optGlob compiles an optional glob query parameter (nil when absent).
func optGlob(c *gin.Context, name string) (*glob.Pattern, error) {
	v := c.Query(name)
	if v == "" {
		return nil, nil
	}
	p, err := glob.Compile(v)
	if err != nil {
		return nil, fieldErr(name, "%v", err)
	}
	return p, nil
}

func (s *Server) listSites(snap *inventory.Snapshot, sitePat, partPat *glob.Pattern) []SiteView {
	var parts []inventory.Partition
	for _, p := range snap.Partitions() {
		if partPat == nil || partPat.Match(p.Name) {
			parts = append(parts, p)
		}
	}
	out := []SiteView{}
	for _, site := range snap.Sites() {
		if sitePat == nil || sitePat.Match(site.Name) {
			out = append(out, siteView(snap, site, parts))
		}
	}
	slices.SortFunc(out, func(a, b SiteView) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func (s *Server) getSites(c *gin.Context) {
	snap, err := s.snapshot()
	if err != nil {
		s.abort(c, err)
		return
	}
	sitePat, err := optGlob(c, "site")
	if err != nil {
		s.abort(c, err)
		return
	}
	partPat, err := optGlob(c, "partition")
	if err != nil {
		s.abort(c, err)
		return
	}
	if sitePat == nil && partPat == nil {
		s.jsonFromSnapshot(c, snap, "sites", func() any { return Page[SiteView]{Items: s.listSites(snap, nil, nil)} })
		return
	}
	c.JSON(http.StatusOK, Page[SiteView]{Items: s.listSites(snap, sitePat, partPat)})
}

func (s *Server) getSite(c *gin.Context) {
	snap, err := s.snapshot()
	if err != nil {
		s.abort(c, err)
		return
	}
	site, ok := snap.SiteByName(c.Param("site"))
	if !ok {
		s.abort(c, fmt.Errorf("%w: site %q", ErrNotFound, c.Param("site")))
		return
	}
	c.JSON(http.StatusOK, siteView(snap, site, snap.Partitions()))
}

func (s *Server) getGroups(c *gin.Context) {
	snap, err := s.snapshot()
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, Page[inventory.Group]{Items: append([]inventory.Group{}, snap.Groups()...)})
}

func datasetView(d inventory.Dataset) DatasetView {
	return DatasetView{Name: d.Name, Status: d.Status.String(), DataType: d.DataType.String(), SoftwareVersion: d.SoftwareVersion,
		Size: d.Size, NumBlocks: d.NumBlocks, NumFiles: d.NumFiles, Open: d.Open, LastUpdate: d.LastUpdate}
}

const (
	defaultLimit = 1000
	maxLimit     = 10000
)

// pageParams reads ?limit= and ?after=, and whether to stream NDJSON
// (?format=ndjson or Accept: application/x-ndjson), which has no limit
// unless one is given.
func pageParams(c *gin.Context) (limit int, after string, ndjson bool, err error) {
	ndjson = c.Query("format") == "ndjson" || strings.Contains(c.GetHeader("Accept"), "application/x-ndjson")
	if f := c.Query("format"); f != "" && f != "ndjson" && f != "json" {
		return 0, "", false, fieldErr("format", "%q: want json or ndjson", f)
	}
	limit = defaultLimit
	if ndjson {
		limit = 0
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || (!ndjson && n > maxLimit) {
			return 0, "", false, fieldErr("limit", "%q: want an integer from 1 to %d", v, maxLimit)
		}
		limit = n
	}
	return limit, c.Query("after"), ndjson, nil
}

// streamNDJSON writes one JSON value per line, flushing as it goes, so a
// client can consume a list of any length without the server holding it.
func streamNDJSON[T any](c *gin.Context, seq func(yield func(T) bool)) {
	c.Header("Content-Type", "application/x-ndjson")
	c.Status(http.StatusOK)
	enc := json.NewEncoder(c.Writer)
	n := 0
	for v := range seq {
		if enc.Encode(v) != nil {
			return // client went away
		}
		if n++; n%1000 == 0 {
			c.Writer.Flush()
		}
	}
}

func (s *Server) getDatasets(c *gin.Context) {
	snap, err := s.snapshot()
	if err != nil {
		s.abort(c, err)
		return
	}
	pattern := c.DefaultQuery("name", "*")
	pat, err := glob.Compile(pattern)
	if err != nil {
		s.abort(c, fieldErr("name", "%v", err))
		return
	}
	limit, after, ndjson, err := pageParams(c)
	if err != nil {
		s.abort(c, err)
		return
	}
	matches := func(yield func(DatasetView) bool) {
		if !glob.HasMeta(pattern) { // an exact name: no index needed
			if d, ok := snap.DatasetByName(pattern); ok && pattern > after {
				yield(datasetView(d))
			}
			return
		}
		for d := range snap.DatasetsByName(glob.LiteralPrefix(pattern), after, pat.Match) {
			if !yield(datasetView(d)) {
				return
			}
		}
	}
	if ndjson {
		n := 0
		streamNDJSON(c, func(yield func(DatasetView) bool) {
			for v := range matches {
				if n++; (limit > 0 && n > limit) || !yield(v) {
					return
				}
			}
		})
		return
	}
	page := Page[DatasetView]{Items: []DatasetView{}}
	add := func(d inventory.Dataset) bool {
		if len(page.Items) == limit {
			page.Next = page.Items[limit-1].Name
			return false
		}
		page.Items = append(page.Items, datasetView(d))
		return true
	}
	if !glob.HasMeta(pattern) {
		if d, ok := snap.DatasetByName(pattern); ok && pattern > after {
			add(d)
		}
		c.JSON(http.StatusOK, page)
		return
	}
	visited, last := 0, ""
	for name := range snap.DatasetNamesInOrder(glob.LiteralPrefix(pattern), after) {
		if visited++; visited > namesPerPage {
			page.Next = last // a glob matching few names: the client goes on from here
			break
		}
		last = name
		if !pat.Match(name) {
			continue
		}
		if d, ok := snap.DatasetByName(name); ok && !add(d) {
			break
		}
	}
	c.JSON(http.StatusOK, page)
}

// namesPerPage bounds the dataset names one page of a glob listing
// examines: a glob that matches few of many names (no literal prefix)
// would otherwise cost a pass over every name per request. The page then
// ends early, with fewer items than asked (maybe none) and a next cursor.
// A variable so that tests can page a small inventory.
var namesPerPage = 100_000

func (s *Server) datasetParam(c *gin.Context) (*inventory.Snapshot, inventory.Dataset, error) {
	snap, err := s.snapshot()
	if err != nil {
		return nil, inventory.Dataset{}, err
	}
	name := c.Param("name")
	if err := inventory.CheckDatasetName(name); err != nil {
		return nil, inventory.Dataset{}, fieldErr("name", "%v (escape '/' as %%2F in the path)", err)
	}
	d, ok := snap.DatasetByName(name)
	if !ok {
		return nil, inventory.Dataset{}, fmt.Errorf("%w: dataset %q", ErrNotFound, name)
	}
	return snap, d, nil
}

func blockReplicaView(snap *inventory.Snapshot, r inventory.BlockReplica) BlockReplicaView {
	site, _ := snap.Site(r.Site)
	g, _ := snap.Group(r.Group)
	return BlockReplicaView{Site: site.Name, Group: g.Name, Complete: r.Complete, Custodial: r.Custodial, PendingDeletion: r.PendingDeletion,
		Size: r.Size, NumFiles: r.NumFiles, LastUpdate: r.LastUpdate}
}

func datasetReplicas(snap *inventory.Snapshot, d inventory.Dataset) []DatasetReplicaView {
	type agg struct {
		n    int
		size int64
		full int
	}
	per := map[inventory.SiteID]*agg{}
	for b := range snap.Blocks(d.ID) {
		for r := range snap.BlockReplicas(b.ID) {
			a := per[r.Site]
			if a == nil {
				a = &agg{}
				per[r.Site] = a
			}
			a.n++
			a.size += r.Size
			if r.Complete {
				a.full++
			}
		}
	}
	out := []DatasetReplicaView{}
	for dr := range snap.DatasetReplicas(d.ID) {
		site, _ := snap.Site(dr.Site)
		g, _ := snap.Group(dr.Group)
		v := DatasetReplicaView{Site: site.Name, Group: g.Name, Growing: dr.Growing}
		if a := per[dr.Site]; a != nil {
			v.NumBlocks, v.Size = a.n, a.size
			v.Complete = a.full == int(d.NumBlocks)
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b DatasetReplicaView) int { return cmp.Compare(a.Site, b.Site) })
	return out
}

func (s *Server) getDataset(c *gin.Context) {
	snap, d, err := s.datasetParam(c)
	if err != nil {
		s.abort(c, err)
		return
	}
	out := DatasetDetail{DatasetView: datasetView(d), Blocks: []BlockView{}, Replicas: datasetReplicas(snap, d)}
	for b := range snap.Blocks(d.ID) {
		bv := BlockView{Name: b.Name, Size: b.Size, NumFiles: b.NumFiles, Open: b.Open, LastUpdate: b.LastUpdate, Replicas: []BlockReplicaView{}}
		for r := range snap.BlockReplicas(b.ID) {
			bv.Replicas = append(bv.Replicas, blockReplicaView(snap, r))
		}
		slices.SortFunc(bv.Replicas, func(a, b BlockReplicaView) int { return cmp.Compare(a.Site, b.Site) })
		out.Blocks = append(out.Blocks, bv)
	}
	slices.SortFunc(out.Blocks, func(a, b BlockView) int { return cmp.Compare(a.Name, b.Name) })
	c.JSON(http.StatusOK, out)
}

func (s *Server) getDatasetReplicas(c *gin.Context) {
	snap, d, err := s.datasetParam(c)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, Page[DatasetReplicaView]{Items: datasetReplicas(snap, d)})
}

func (s *Server) getBlockFiles(c *gin.Context) {
	snap, err := s.snapshot()
	if err != nil {
		s.abort(c, err)
		return
	}
	name := c.Param("name")
	if _, _, err := inventory.SplitBlockName(name); err != nil {
		s.abort(c, fieldErr("name", "%v (escape '/' as %%2F and '#' as %%23 in the path)", err))
		return
	}
	b, ok := snap.BlockByName(name)
	if !ok {
		s.abort(c, fmt.Errorf("%w: block %q", ErrNotFound, name))
		return
	}
	files, err := s.inv.Load().Files(c.Request.Context(), b.ID)
	if err != nil {
		s.abort(c, err)
		return
	}
	if files == nil {
		files = []inventory.File{}
	}
	c.JSON(http.StatusOK, Page[inventory.File]{Items: files})
}

// usageCache holds per-group occupancy, which needs a pass over every
// block replica; recomputed at most every usageMaxAge while the inventory
// changes.
type usageCache struct {
	mu    sync.Mutex
	seq   uint64
	built time.Time
	rows  []UsageRow
}

const usageMaxAge = 60 * time.Second

func (u *usageCache) byGroup(snap *inventory.Snapshot) []UsageRow {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.rows != nil && (u.seq == snap.Seq() || time.Since(u.built) < usageMaxAge) {
		return u.rows
	}
	agg := map[inventory.GroupID]*UsageRow{}
	for _, site := range snap.Sites() {
		for r := range snap.BlockReplicasAtSite(site.ID) {
			a := agg[r.Group]
			if a == nil {
				g, _ := snap.Group(r.Group)
				a = &UsageRow{Key: g.Name}
				agg[r.Group] = a
			}
			a.Used += r.Size
			if b, ok := snap.Block(r.Block); ok {
				a.Projected += b.Size
			}
			a.Replicas++
		}
	}
	rows := []UsageRow{}
	for _, a := range agg {
		rows = append(rows, *a)
	}
	slices.SortFunc(rows, func(a, b UsageRow) int { return cmp.Compare(a.Key, b.Key) })
	u.rows, u.seq, u.built = rows, snap.Seq(), time.Now()
	return rows
}

func (s *Server) getUsage(c *gin.Context) {
	snap, err := s.snapshot()
	if err != nil {
		s.abort(c, err)
		return
	}
	rows := []UsageRow{}
	switch by := c.DefaultQuery("by", "site"); by {
	case "site":
		s.jsonFromSnapshot(c, snap, "usage-by-site", func() any {
			for _, v := range s.listSites(snap, nil, nil) {
				rows = append(rows, UsageRow{Key: v.Name, Quota: v.TotalQuota, Used: v.TotalUsed, Projected: v.TotalProjected})
			}
			return Page[UsageRow]{Items: rows}
		})
		return
	case "partition":
		s.jsonFromSnapshot(c, snap, "usage-by-partition", func() any {
			for _, p := range snap.Partitions() {
				r := UsageRow{Key: p.Name}
				for _, site := range snap.Sites() {
					u := snap.Usage(site.ID, p.ID)
					r.Quota += u.Quota
					r.Used += u.Physical
					r.Projected += u.Projected
				}
				rows = append(rows, r)
			}
			return Page[UsageRow]{Items: rows}
		})
		return
	case "group":
		rows = s.usage.byGroup(snap)
	default:
		s.abort(c, fieldErr("by", "%q: want site, group or partition", by))
		return
	}
	c.JSON(http.StatusOK, Page[UsageRow]{Items: rows})
}
