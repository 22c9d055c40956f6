package registry

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/inventory"
)

// Dynamo's inventory/groups and inventory/stats/{size,replication,usage}
// (lib/web/modules/inventory/{groups,stats}.py): the same parameters and
// payloads, computed on one inventory snapshot.

func (s *Server) compatGroups(c *gin.Context) {
	p, err := readCompatParams(c, "group")
	if err != nil {
		s.abort(c, err)
		return
	}
	snap, err := s.snapshot()
	if err != nil {
		s.abort(c, err)
		return
	}
	var pat *glob.Pattern
	if g := p.one("group"); g != "" {
		if pat, err = glob.Compile(g); err != nil {
			s.abort(c, fieldErr("group", "%v", err))
			return
		}
	}
	groups := append([]inventory.Group(nil), snap.Groups()...)
	slices.SortFunc(groups, func(a, b inventory.Group) int { return cmp.Compare(a.Name, b.Name) })
	out := []map[string]any{}
	for _, g := range groups {
		if pat == nil || pat.Match(g.Name) {
			out = append(out, map[string]any{"name": g.Name, "olevel": g.Level.String()})
		}
	}
	ok(c, "", out)
}

// statTarget is what a stats category describes.
type statTarget int

const (
	targetDataset statTarget = iota
	targetSite
	targetGroup
)

// statCategory is one of Dynamo's InventoryStatCategories. value returns
// the category's value and false for "None" (no software version, no
// owner group).
type statCategory struct {
	name   string
	target statTarget
	value  func(snap *inventory.Snapshot, d inventory.Dataset, site inventory.Site, g inventory.GroupID) (string, bool)
}

// statCategories in Dynamo's order: the first is list_by's default.
var statCategories = []statCategory{
	{"data_type", targetDataset, func(_ *inventory.Snapshot, d inventory.Dataset, _ inventory.Site, _ inventory.GroupID) (string, bool) {
		return d.DataType.String(), true
	}},
	{"dataset_status", targetDataset, func(_ *inventory.Snapshot, d inventory.Dataset, _ inventory.Site, _ inventory.GroupID) (string, bool) {
		return d.Status.String(), true
	}},
	{"dataset_software_version", targetDataset, func(_ *inventory.Snapshot, d inventory.Dataset, _ inventory.Site, _ inventory.GroupID) (string, bool) {
		return d.SoftwareVersion, d.SoftwareVersion != ""
	}},
	{"dataset", targetDataset, func(_ *inventory.Snapshot, d inventory.Dataset, _ inventory.Site, _ inventory.GroupID) (string, bool) {
		return d.Name, true
	}},
	{"site", targetSite, func(_ *inventory.Snapshot, _ inventory.Dataset, s inventory.Site, _ inventory.GroupID) (string, bool) {
		return s.Name, true
	}},
	{"site_status", targetSite, func(_ *inventory.Snapshot, _ inventory.Dataset, s inventory.Site, _ inventory.GroupID) (string, bool) {
		return s.Status.String(), true
	}},
	{"group", targetGroup, func(snap *inventory.Snapshot, _ inventory.Dataset, _ inventory.Site, g inventory.GroupID) (string, bool) {
		if grp, found := snap.Group(g); found && g != 0 {
			return grp.Name, true
		}
		return "", false
	}},
}

func statCategoryNames() []string {
	out := make([]string, len(statCategories))
	for i, c := range statCategories {
		out[i] = c.name
	}
	return out
}

// statConstraint is an ORed list of patterns on one category. Dynamo
// matches each with Python's re.match (anchored at the start only); the
// literal "None" matches an absent value.
type statConstraint struct {
	cat      statCategory
	pats     []*regexp.Regexp
	wantNone bool
}

func (k statConstraint) pass(snap *inventory.Snapshot, d inventory.Dataset, site inventory.Site, g inventory.GroupID) bool {
	v, present := k.cat.value(snap, d, site, g)
	if !present {
		return k.wantNone
	}
	return slices.ContainsFunc(k.pats, func(re *regexp.Regexp) bool { return re.MatchString(v) })
}

// statQuery is a parsed stats call.
type statQuery struct {
	listBy      statCategory
	constraints map[statTarget][]statConstraint
	physical    bool
}

func parseStatQuery(p compatParams, physicalDefault bool) (statQuery, error) {
	q := statQuery{listBy: statCategories[0], constraints: map[statTarget][]statConstraint{}, physical: physicalDefault}
	if v := strings.TrimSpace(p.one("list_by")); v != "" {
		i := slices.IndexFunc(statCategories, func(c statCategory) bool { return c.name == v })
		if i < 0 {
			return q, fieldErr("list_by", "%q: want one of %s", v, strings.Join(statCategoryNames(), ", "))
		}
		q.listBy = statCategories[i]
	}
	for _, cat := range statCategories {
		vals := p.list(cat.name)
		if len(vals) == 0 {
			continue
		}
		k := statConstraint{cat: cat}
		for _, v := range vals {
			if v == "None" {
				k.wantNone = true
				continue
			}
			re, err := regexp.Compile(`^(?:` + v + `)`)
			if err != nil {
				return q, fieldErr(cat.name, "%q: not a regular expression: %v", v, err)
			}
			k.pats = append(k.pats, re)
		}
		q.constraints[cat.target] = append(q.constraints[cat.target], k)
	}
	if v := p.one("physical"); v != "" {
		b, err := yesno(v)
		if err != nil {
			return q, fieldErr("physical", "%v", err)
		}
		q.physical = b
	}
	return q, nil
}

// yesno parses Dynamo's boolean parameters.
func yesno(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "y", "yes", "true":
		return true, nil
	case "0", "n", "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q: want y/yes/true/1 or n/no/false/0", v)
}

// statReplica is the part of one dataset replica that passes the filters:
// its block replicas owned by a matching group.
type statReplica struct {
	site   inventory.Site
	blocks []inventory.BlockReplica
}

// statKey is a category value; none stands for Python's None (JSON null).
type statKey struct {
	v    string
	none bool
}

func (k statKey) json() any {
	if k.none {
		return nil
	}
	return k.v
}

func compareStatKeys(a, b statKey) int {
	if a.none != b.none {
		if a.none {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.v, b.v)
}

// statEntry is one categorized item: a (part of a) replica with its block
// replicas, or, for replication, a dataset with a replica count.
type statEntry struct {
	dataset inventory.Dataset
	rep     statReplica
	count   int
}

// categorize is Dynamo's filter_and_categorize: the replicas (or, with
// countsOnly, the per-dataset replica counts) passing every constraint,
// keyed by the list_by category.
func (q statQuery) categorize(snap *inventory.Snapshot, countsOnly bool) map[statKey][]statEntry {
	passes := func(t statTarget, d inventory.Dataset, site inventory.Site, g inventory.GroupID) bool {
		for _, k := range q.constraints[t] {
			if !k.pass(snap, d, site, g) {
				return false
			}
		}
		return true
	}
	sites := map[inventory.SiteID]inventory.Site{}
	for _, s := range snap.Sites() {
		if passes(targetSite, inventory.Dataset{}, s, 0) {
			sites[s.ID] = s
		}
	}
	groupOK := map[inventory.GroupID]bool{0: passes(targetGroup, inventory.Dataset{}, inventory.Site{}, 0)}
	for _, g := range snap.Groups() {
		groupOK[g.ID] = passes(targetGroup, inventory.Dataset{}, inventory.Site{}, g.ID)
	}
	key := func(d inventory.Dataset, site inventory.Site, g inventory.GroupID) statKey {
		v, present := q.listBy.value(snap, d, site, g)
		return statKey{v: v, none: !present}
	}
	out := map[statKey][]statEntry{}
	for d := range snap.Datasets() {
		if !passes(targetDataset, d, inventory.Site{}, 0) {
			continue
		}
		bySite := map[inventory.SiteID]*statReplica{}
		var order []inventory.SiteID
		for b := range snap.Blocks(d.ID) {
			for br := range snap.BlockReplicas(b.ID) {
				site, ok := sites[br.Site]
				if !ok || !groupOK[br.Group] {
					continue
				}
				if !q.physical {
					// Dynamo's projected size: the block's, whatever has arrived.
					br.Size = b.Size
				}
				r := bySite[br.Site]
				if r == nil {
					r = &statReplica{site: site}
					bySite[br.Site] = r
					order = append(order, br.Site)
				}
				r.blocks = append(r.blocks, br)
			}
		}
		slices.Sort(order)
		switch q.listBy.target {
		case targetDataset:
			k := key(d, inventory.Site{}, 0)
			if _, seen := out[k]; !seen {
				// Dynamo lists a category whose datasets have no replica left
				// after filtering, with size 0.
				out[k] = nil
			}
			if countsOnly {
				out[k] = append(out[k], statEntry{dataset: d, count: len(order)})
				continue
			}
			for _, id := range order {
				out[k] = append(out[k], statEntry{dataset: d, rep: *bySite[id]})
			}
		case targetSite:
			for _, id := range order {
				r := bySite[id]
				k := key(d, r.site, 0)
				out[k] = append(out[k], statEntry{dataset: d, rep: *r, count: 1})
			}
		case targetGroup:
			counts := map[statKey]int{}
			var keys []statKey
			for _, id := range order {
				r := bySite[id]
				byGroup := map[statKey][]inventory.BlockReplica{}
				var gkeys []statKey
				for _, br := range r.blocks {
					k := key(d, r.site, br.Group)
					if _, seen := byGroup[k]; !seen {
						gkeys = append(gkeys, k)
					}
					byGroup[k] = append(byGroup[k], br)
				}
				for _, k := range gkeys {
					if countsOnly {
						if counts[k] == 0 {
							keys = append(keys, k)
						}
						counts[k]++
						continue
					}
					out[k] = append(out[k], statEntry{dataset: d, rep: statReplica{site: r.site, blocks: byGroup[k]}})
				}
			}
			for _, k := range keys {
				out[k] = append(out[k], statEntry{dataset: d, count: counts[k]})
			}
		}
	}
	return out
}

func entrySize(e statEntry) int64 {
	var n int64
	for _, br := range e.rep.blocks {
		n += br.Size
	}
	return n
}

// statRow is one {key, size} of a size or usage listing.
type statRow struct {
	key  statKey
	size int64
}

func sortRowsBySize(rows []statRow) {
	slices.SortFunc(rows, func(a, b statRow) int {
		if r := cmp.Compare(b.size, a.size); r != 0 {
			return r
		}
		return compareStatKeys(a.key, b.key)
	})
}

func rowsJSON(rows []statRow) []map[string]any {
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		out[i] = map[string]any{"key": r.key.json(), "size": float64(r.size) / tb}
	}
	return out
}

var statParams = append([]string{"list_by", "physical"}, statCategoryNames()...)

// compatStats answers stats/size (default: projected sizes),
// stats/replication and stats/usage (default: physical sizes).
func (s *Server) compatStats(statistic string) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := readCompatParams(c, statParams...)
		if err != nil {
			s.abort(c, err)
			return
		}
		q, err := parseStatQuery(p, statistic == "usage")
		if err != nil {
			s.abort(c, err)
			return
		}
		snap, err := s.snapshot()
		if err != nil {
			s.abort(c, err)
			return
		}
		switch statistic {
		case "size":
			var rows []statRow
			for k, entries := range q.categorize(snap, false) {
				r := statRow{key: k}
				for _, e := range entries {
					r.size += entrySize(e)
				}
				rows = append(rows, r)
			}
			sortRowsBySize(rows)
			ok(c, "", map[string]any{"statistic": "size", "content": rowsJSON(rows)})
		case "replication":
			type repl struct {
				key       statKey
				mean, rms float64
			}
			var rows []repl
			for k, entries := range q.categorize(snap, true) {
				var sumw, sumw2 float64
				for _, e := range entries {
					sumw += float64(e.count)
					sumw2 += float64(e.count * e.count)
				}
				n := float64(len(entries))
				mean := sumw / n
				rows = append(rows, repl{key: k, mean: mean, rms: math.Sqrt(max(0, sumw2/n-mean*mean))})
			}
			slices.SortFunc(rows, func(a, b repl) int {
				if r := cmp.Compare(b.mean, a.mean); r != 0 {
					return r
				}
				return compareStatKeys(a.key, b.key)
			})
			content := make([]map[string]any, len(rows))
			for i, r := range rows {
				content[i] = map[string]any{"key": r.key.json(), "mean": r.mean, "rms": r.rms}
			}
			ok(c, "", map[string]any{"statistic": "replication", "content": content})
		case "usage":
			cats := q.categorize(snap, false)
			bySite := map[string]map[statKey]int64{}
			keys := make([]statKey, 0, len(cats))
			for k, entries := range cats {
				keys = append(keys, k)
				for _, e := range entries {
					m := bySite[e.rep.site.Name]
					if m == nil {
						m = map[statKey]int64{}
						bySite[e.rep.site.Name] = m
					}
					m[k] += entrySize(e)
				}
			}
			slices.SortFunc(keys, compareStatKeys)
			siteNames := make([]string, 0, len(bySite))
			for n := range bySite {
				siteNames = append(siteNames, n)
			}
			slices.Sort(siteNames)
			content := make([]map[string]any, 0, len(siteNames))
			for _, n := range siteNames {
				var rows []statRow
				for k, size := range bySite[n] {
					rows = append(rows, statRow{key: k, size: size})
				}
				sortRowsBySize(rows)
				content = append(content, map[string]any{"site": n, "usage": rowsJSON(rows)})
			}
			keysJSON := make([]any, len(keys))
			for i, k := range keys {
				keysJSON[i] = k.json()
			}
			ok(c, "", map[string]any{"statistic": "usage", "content": content, "keys": keysJSON})
		}
	}
}
