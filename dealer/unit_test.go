package dealer

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

func TestMergeProposals(t *testing.T) {
	mk := func(plugin string, n int) []Proposal {
		out := make([]Proposal, n)
		for i := range out {
			out[i] = Proposal{Plugin: plugin, Note: strings.Repeat("x", i)}
		}
		return out
	}
	order := func(ps []Proposal) string {
		var b strings.Builder
		for _, p := range ps {
			b.WriteByte(p.Plugin[0])
		}
		return b.String()
	}
	names := []string{"a", "b", "c"}
	tests := []struct {
		name  string
		lists map[string][]Proposal
		prio  map[string]int
		want  string
	}{
		{"equal priorities alternate", map[string][]Proposal{"a": mk("a", 3), "b": mk("b", 3)}, map[string]int{"a": 1, "b": 1}, "ababab"},
		{"priority 1 gets twice priority 2", map[string][]Proposal{"a": mk("a", 4), "b": mk("b", 2)}, map[string]int{"a": 1, "b": 2}, "abaaba"},
		{"exhausted plugin leaves the rest in order", map[string][]Proposal{"a": mk("a", 1), "b": mk("b", 3)}, map[string]int{"a": 1, "b": 3}, "abbb"},
		{"priority 0 is exclusive", map[string][]Proposal{"a": mk("a", 2), "b": mk("b", 2), "c": mk("c", 1)}, map[string]int{"a": 1, "b": 0, "c": 0}, "bcb"},
		{"nothing", map[string][]Proposal{}, map[string]int{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mergeProposals(names, tc.lists, tc.prio)
			if order(got) != tc.want {
				t.Fatalf("order %q, want %q", order(got), tc.want)
			}
			// each plugin's own order is kept
			last := map[string]int{}
			for _, p := range got {
				if len(p.Note) < last[p.Plugin] {
					t.Fatalf("plugin %s reordered", p.Plugin)
				}
				last[p.Plugin] = len(p.Note)
			}
		})
	}
}

func TestRequestWeights(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	hl := 96 * time.Hour
	tests := []struct {
		name string
		acc  []DatasetAccess
		want float64
	}{
		{"fresh access weighs its count", []DatasetAccess{{"/a/b/c", now.Unix(), 3}}, 3},
		{"one half-life halves", []DatasetAccess{{"/a/b/c", now.Add(-hl).Unix(), 4}}, 2},
		{"two half-lives quarter", []DatasetAccess{{"/a/b/c", now.Add(-2 * hl).Unix(), 4}}, 1},
		{"future access counts as now", []DatasetAccess{{"/a/b/c", now.Add(time.Hour).Unix(), 1}}, 1},
		{"sums", []DatasetAccess{{"/a/b/c", now.Unix(), 1}, {"/a/b/c", now.Add(-hl).Unix(), 2}}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := requestWeights(tc.acc, now, hl)["/a/b/c"]
			if math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("weight %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"defaults", "", ""},
		{"sizes with units", "max_cycle_volume: 1.5 PB\nmax_site_cycle_volume: 20TB\n", ""},
		{"unknown key", "max_cycle_volumes: 1TB\n", "1:1: max_cycle_volumes: unknown key"},
		{"bad size", "max_cycle_volume: lots\n", "1:19: \"lots\" is not a size"},
		{"target above 1", "target_occupancy: 1.2\n", "dealer.target_occupancy"},
		{"pending zero", "max_pending_fraction: 0\n", "dealer.max_pending_fraction"},
		{"no partition", "partition: \"\"\n", "dealer.partition: required"},
		{"negative priority", "plugins: {balancer: {priority: -1}}\n", "dealer.plugins.balancer.priority"},
		{"bad half life", "plugins: {popularity: {half_life: soon}}\n", "1:35: plugins.popularity.half_life: \"soon\" is not a duration"},
		{"threshold zero", "plugins: {popularity: {threshold: 0}}\n", "dealer.plugins.popularity.threshold"},
		{"upgrade fraction", "plugins: {requests: {block_upgrade_fraction: 2}}\n", "block_upgrade_fraction"},
		{"reassign needs groups", "plugins: {groupreassign: {enabled: true}}\n", "from_groups"},
		{"placement needs both", "placement: [{replicas: \"dataset.name == /A/*\"}]\n", "dealer.placement[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := yamlconf.Read(strings.NewReader(tc.yaml), DecodeConfig)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v, want one containing %q wrapping ErrConfig", err, tc.want)
			}
		})
	}
}

func TestNewRejectsBadRules(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Plugins.Enforcer.RulesFiles = []string{"testdata/enforcer_default.json"}
	cfg.Partition = "Physics"
	if _, err := New(cfg, Deps{}, nil); err == nil || !strings.Contains(err.Error(), "not the dealer's partition") {
		t.Fatalf("partition mismatch: %v", err)
	}
	cfg = DefaultConfig()
	cfg.Placement = []PlacementRuleConfig{{Replicas: "dataset.last_access < 1 week ago", Sites: "site.name == T2_*"}}
	if _, err := New(cfg, Deps{}, nil); err == nil || !strings.Contains(err.Error(), "dataset.last_access") {
		t.Fatalf("unbound variable: %v", err)
	}
	cfg = DefaultConfig()
	cfg.Placement = []PlacementRuleConfig{{Replicas: "dataset.name == /A/*", Sites: "site.nam == T2_*"}}
	if _, err := New(cfg, Deps{}, nil); err == nil || !strings.Contains(err.Error(), "placement[0].sites") {
		t.Fatalf("bad site condition: %v", err)
	}
}
