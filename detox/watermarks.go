package detox

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// Watermark is what one partition's policy says about one site it
// targets: the occupancy above which a cycle starts deleting (High, from
// the When line) and the one it deletes down to (Low, from the Until
// line). Policies need not be written as occupancy thresholds; High or
// Low is then 0 and the line's text says what applies.
type Watermark struct {
	Partition string  `json:"partition"`
	Site      string  `json:"site"`
	High      float64 `json:"high,omitempty"`
	Low       float64 `json:"low,omitempty"`
	WhenLine  string  `json:"when,omitempty"`
	UntilLine string  `json:"until,omitempty"`
	Quota     int64   `json:"quota"`
	Used      int64   `json:"used"`
	// Triggered: a cycle run now would start deleting at this site.
	Triggered bool `json:"triggered"`
}

// occupancyBound finds "site.occupancy > 0.9" (or >=, <, <=) in a line.
var occupancyBound = regexp.MustCompile(`site\.occupancy\s*(?:>=|<=|>|<)\s*([0-9]*\.?[0-9]+)`)

func bound(lines []policy.SiteLine) (float64, string) {
	for _, l := range lines {
		if m := occupancyBound.FindStringSubmatch(l.Text); m != nil {
			v, err := strconv.ParseFloat(m[1], 64)
			if err == nil {
				return v, l.Text
			}
		}
	}
	if len(lines) > 0 {
		return 0, lines[0].Text
	}
	return 0, ""
}

// Watermarks evaluates pol's On lines on every site of snap and returns,
// for each target site, the policy's watermarks with the site's current
// occupancy of the partition. It is cheap (one condition per site, no
// replica is read), so pages and metrics may call it on every request.
func Watermarks(snap *inventory.Snapshot, pol *policy.Policy, at time.Time) ([]Watermark, error) {
	part, ok := snap.PartitionByName(pol.Partition)
	if !ok {
		return nil, nil
	}
	c := &cycle{pol: pol, snap: snap, at: at, now: at.Unix()}
	cp, err := policy.CompilePolicy(pol, c.replicaBindings(), siteBindings(), at)
	if err != nil {
		return nil, err
	}
	high, whenText := bound(pol.When)
	low, untilText := bound(pol.Until)
	var out []Watermark
	for _, s := range snap.Sites() {
		u := snap.Usage(s.ID, part.ID)
		st := &siteState{site: s, quota: u.Quota, before: u.Physical, used: u.Physical}
		if !cp.IsTarget(st) {
			continue
		}
		out = append(out, Watermark{Partition: pol.Partition, Site: s.Name, High: high, Low: low, WhenLine: whenText,
			UntilLine: untilText, Quota: u.Quota, Used: u.Physical, Triggered: cp.Triggered(st)})
	}
	return out, nil
}

// Watermarks returns the watermarks of every configured partition's
// policy at the sites it targets, sorted by partition then site. A
// policy that no longer loads is an error naming its partition.
func (r *Runner) Watermarks(snap *inventory.Snapshot, at time.Time) ([]Watermark, error) {
	names := make([]string, 0, len(r.Config.Partitions))
	for n := range r.Config.Partitions {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []Watermark
	for _, n := range names {
		pol, err := r.LoadPolicy(n, "")
		if err != nil {
			return nil, fmt.Errorf("detox partition %s: %w", n, err)
		}
		ws, err := Watermarks(snap, pol, at)
		if err != nil {
			return nil, fmt.Errorf("detox partition %s: %w", n, err)
		}
		out = append(out, ws...)
	}
	return out, nil
}
