package dealer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/internal/bytesize"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

// Plugin names, as used in Config.Plugins, proposals and history.
const (
	PluginRequests      = "requests"
	PluginEnforcer      = "enforcer"
	PluginPopularity    = "popularity"
	PluginBalancer      = "balancer"
	PluginUndertaker    = "undertaker"
	PluginGroupReassign = "groupreassign"
)

// PluginNames lists every plugin, in the order Config documents them.
var PluginNames = []string{PluginRequests, PluginEnforcer, PluginPopularity, PluginBalancer, PluginUndertaker, PluginGroupReassign}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid dealer configuration")

// Config is the Dealer's configuration (YAML key `dealer:` of the main
// configuration). Start from DefaultConfig, decode strictly, then Validate.
// Sizes accept bytes or a number with a unit ("200 TB", "1.5PB").
type Config struct {
	// Partition is the partition whose quotas the Dealer fills and in which
	// new replicas are counted.
	Partition string `yaml:"partition" json:"partition"`
	// Group owns new replicas unless a proposal names another group.
	Group string `yaml:"group" json:"group"`
	// TargetSites are glob patterns of site names that may receive copies;
	// a pattern starting with ! excludes. Empty means every site.
	TargetSites []string `yaml:"target_sites" json:"target_sites"`
	// TargetOccupancy: a site whose projected occupancy of the partition
	// quota is at or above this fraction receives nothing more this cycle.
	TargetOccupancy float64 `yaml:"target_occupancy" json:"target_occupancy"`
	// MaxPendingFraction: a site whose pending volume (projected minus
	// physical) is at or above this fraction of its quota is not a target.
	MaxPendingFraction float64 `yaml:"max_pending_fraction" json:"max_pending_fraction"`
	// MaxCycleVolume bounds the bytes planned in one cycle (0: no bound).
	MaxCycleVolume Bytes `yaml:"max_cycle_volume" json:"max_cycle_volume"`
	// MaxSiteCycleVolume bounds the bytes planned to one site in one
	// cycle (0: no bound).
	MaxSiteCycleVolume Bytes `yaml:"max_site_cycle_volume" json:"max_site_cycle_volume"`
	// MaxRequestVolume bounds the bytes planned for one copy request in one
	// cycle (0: no bound).
	MaxRequestVolume Bytes `yaml:"max_request_volume" json:"max_request_volume"`
	// Seed makes every cycle use this random seed; 0 draws a fresh seed per
	// cycle. Either way the seed is recorded with the cycle.
	Seed uint64 `yaml:"seed" json:"seed"`
	// Placement rules restrict where data may go (all must allow).
	Placement []PlacementRuleConfig `yaml:"placement" json:"placement,omitempty"`

	Plugins PluginsConfig `yaml:"plugins" json:"plugins"`
}

// PlacementRuleConfig says that replicas matching Replicas (a replica
// condition, evaluated on the would-be new replica) may only be placed at
// sites matching Sites (a site condition).
type PlacementRuleConfig struct {
	Replicas string `yaml:"replicas" json:"replicas"`
	Sites    string `yaml:"sites" json:"sites"`
}

// PluginCommon is what every plugin has.
type PluginCommon struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Priority orders plugins: the merged proposal list takes from each
	// plugin in proportion to 1/priority. Priority 0 is exclusive: if any
	// enabled plugin has priority 0, only priority-0 plugins are used.
	Priority int `yaml:"priority" json:"priority"`
	// MaxCycleVolume bounds the bytes this plugin's proposals may take in
	// one cycle (0: no bound).
	MaxCycleVolume Bytes `yaml:"max_cycle_volume" json:"max_cycle_volume"`
}

// PluginsConfig configures each plugin.
type PluginsConfig struct {
	Requests      RequestsConfig      `yaml:"requests" json:"requests"`
	Enforcer      EnforcerConfig      `yaml:"enforcer" json:"enforcer"`
	Popularity    PopularityConfig    `yaml:"popularity" json:"popularity"`
	Balancer      BalancerConfig      `yaml:"balancer" json:"balancer"`
	Undertaker    UndertakerConfig    `yaml:"undertaker" json:"undertaker"`
	GroupReassign GroupReassignConfig `yaml:"groupreassign" json:"groupreassign"`
}

// RequestsConfig configures the copy-requests plugin.
type RequestsConfig struct {
	PluginCommon `yaml:",inline" json:",inline"`
	// BlockUpgradeFraction: a request for blocks of one dataset whose total
	// size exceeds this fraction of the dataset is served as the dataset.
	BlockUpgradeFraction float64 `yaml:"block_upgrade_fraction" json:"block_upgrade_fraction"`
	// MaxRequestSize rejects new requests whose items add up to more.
	MaxRequestSize Bytes `yaml:"max_request_size" json:"max_request_size"`
}

// EnforcerConfig configures the enforcer plugin.
type EnforcerConfig struct {
	PluginCommon `yaml:",inline" json:",inline"`
	// RulesFiles are enforcer rule files in Dynamo's JSON shape; their
	// partition must be the Dealer's partition.
	RulesFiles []string `yaml:"rules_files" json:"rules_files"`
}

// PopularityConfig configures the popularity plugin.
type PopularityConfig struct {
	PluginCommon `yaml:",inline" json:",inline"`
	// HalfLife of an access's weight (Dynamo: 4 days).
	HalfLife time.Duration `yaml:"half_life" json:"half_life"`
	// Threshold is the request weight worth one replica.
	Threshold float64 `yaml:"threshold" json:"threshold"`
	// MaxReplication caps the wanted number of replicas.
	MaxReplication int `yaml:"max_replication" json:"max_replication"`
	// MaxDatasetSize: larger datasets are not copied for popularity.
	MaxDatasetSize Bytes `yaml:"max_dataset_size" json:"max_dataset_size"`
	// SourceGroups: only datasets with a replica owned by one of these
	// groups are considered (empty: any owner).
	SourceGroups []string `yaml:"source_groups" json:"source_groups"`
}

// BalancerConfig configures the balancer plugin.
type BalancerConfig struct {
	PluginCommon `yaml:",inline" json:",inline"`
	// Tolerance: balancing stops when the spread of protected fractions
	// (max − min) is below it.
	Tolerance float64 `yaml:"tolerance" json:"tolerance"`
	// MaxDatasetSize: larger last copies are not moved.
	MaxDatasetSize Bytes `yaml:"max_dataset_size" json:"max_dataset_size"`
}

// UndertakerConfig configures the undertaker plugin.
type UndertakerConfig struct {
	PluginCommon `yaml:",inline" json:",inline"`
	// AdditionalSites are evacuated as if they were not ready (glob patterns).
	AdditionalSites []string `yaml:"additional_sites" json:"additional_sites"`
}

// GroupReassignConfig configures the group-reassignment plugin.
type GroupReassignConfig struct {
	PluginCommon `yaml:",inline" json:",inline"`
	// FromGroups: replicas owned by these groups at target sites are handed
	// to ToGroup (ToGroup empty: the Dealer's Group).
	FromGroups []string `yaml:"from_groups" json:"from_groups"`
	ToGroup    string   `yaml:"to_group" json:"to_group"`
}

// DefaultConfig returns CMS's production values (Dynamo's
// dealer_config.json), with the requests, enforcer, popularity, balancer and
// undertaker plugins enabled; plugins whose inputs are absent propose nothing.
func DefaultConfig() Config {
	return Config{
		Partition:          "Default",
		Group:              "AnalysisOps",
		TargetOccupancy:    0.93,
		MaxPendingFraction: 0.03,
		MaxCycleVolume:     200 * TB,
		MaxSiteCycleVolume: 0,
		MaxRequestVolume:   200 * TB,
		Plugins: PluginsConfig{
			Requests: RequestsConfig{PluginCommon: PluginCommon{Enabled: true, Priority: 1},
				BlockUpgradeFraction: 0.5, MaxRequestSize: 200 * TB},
			Enforcer: EnforcerConfig{PluginCommon: PluginCommon{Enabled: true, Priority: 2}},
			Popularity: PopularityConfig{PluginCommon: PluginCommon{Enabled: true, Priority: 3},
				HalfLife: 96 * time.Hour, Threshold: 1.75, MaxReplication: 10, MaxDatasetSize: 50 * TB},
			Balancer: BalancerConfig{PluginCommon: PluginCommon{Enabled: true, Priority: 3, MaxCycleVolume: 35 * TB},
				Tolerance: 0.05, MaxDatasetSize: 75 * TB},
			Undertaker:    UndertakerConfig{PluginCommon: PluginCommon{Enabled: true, Priority: 2}},
			GroupReassign: GroupReassignConfig{PluginCommon: PluginCommon{Enabled: false, Priority: 3}},
		},
	}
}

// DecodeConfig decodes a `dealer:` section on top of DefaultConfig (see
// DecodeConfigOnto).
func DecodeConfig(n *yaml.Node) (Config, error) {
	return DecodeConfigOnto(DefaultConfig(), n)
}

// Validate checks every field and returns all problems at once, each
// naming its YAML key; the error wraps ErrConfig.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: dealer.%s: %s", ErrConfig, key, fmt.Sprintf(format, args...)))
	}
	if c.Partition == "" {
		bad("partition", "required")
	}
	if c.Group == "" {
		bad("group", "required")
	}
	frac := func(key string, v float64) {
		if !(v > 0 && v <= 1) {
			bad(key, "%v is not a fraction in (0, 1]", v)
		}
	}
	frac("target_occupancy", c.TargetOccupancy)
	frac("max_pending_fraction", c.MaxPendingFraction)
	for i, p := range c.TargetSites {
		if strings.TrimPrefix(p, "!") == "" {
			bad(fmt.Sprintf("target_sites[%d]", i), "empty pattern")
		}
	}
	for i, r := range c.Placement {
		if r.Replicas == "" || r.Sites == "" {
			bad(fmt.Sprintf("placement[%d]", i), "replicas and sites are both required")
		}
	}
	for _, pc := range c.Plugins.all() {
		if pc.c.Priority < 0 {
			bad("plugins."+pc.name+".priority", "%d is negative", pc.c.Priority)
		}
	}
	p := &c.Plugins
	if v := p.Requests.BlockUpgradeFraction; v < 0 || v > 1 {
		bad("plugins.requests.block_upgrade_fraction", "%v is not a fraction in [0, 1]", v)
	}
	if p.Enforcer.Enabled {
		for i, f := range p.Enforcer.RulesFiles {
			if f == "" {
				bad(fmt.Sprintf("plugins.enforcer.rules_files[%d]", i), "empty path")
			}
		}
	}
	if p.Popularity.Enabled {
		if p.Popularity.HalfLife <= 0 {
			bad("plugins.popularity.half_life", "must be positive")
		}
		if !(p.Popularity.Threshold > 0) {
			bad("plugins.popularity.threshold", "must be positive")
		}
		if p.Popularity.MaxReplication < 1 {
			bad("plugins.popularity.max_replication", "must be at least 1")
		}
	}
	if p.Balancer.Tolerance < 0 || p.Balancer.Tolerance >= 1 {
		bad("plugins.balancer.tolerance", "%v is not a fraction in [0, 1)", p.Balancer.Tolerance)
	}
	if p.GroupReassign.Enabled && len(p.GroupReassign.FromGroups) == 0 {
		bad("plugins.groupreassign.from_groups", "required when the plugin is enabled")
	}
	return errors.Join(errs...)
}

type namedCommon struct {
	name string
	c    *PluginCommon
}

func (p *PluginsConfig) all() []namedCommon {
	return []namedCommon{
		{PluginRequests, &p.Requests.PluginCommon}, {PluginEnforcer, &p.Enforcer.PluginCommon},
		{PluginPopularity, &p.Popularity.PluginCommon}, {PluginBalancer, &p.Balancer.PluginCommon},
		{PluginUndertaker, &p.Undertaker.PluginCommon}, {PluginGroupReassign, &p.GroupReassign.PluginCommon},
	}
}

// Byte multiples (decimal, as CMS quotas are).
const (
	GB Bytes = 1e9
	TB Bytes = 1e12
)

// Bytes is a size in bytes that YAML may write as a plain integer or as a
// number with a unit (B, kB, MB, GB, TB, PB, KiB ... PiB).
type Bytes int64

// UnmarshalYAML accepts an integer or a size string.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	v, err := bytesize.Parse(n.Value)
	if err != nil {
		return yamlconf.ErrorAt(n, "%v", err)
	}
	*b = Bytes(v)
	return nil
}

// MarshalYAML writes the plain byte count.
func (b Bytes) MarshalYAML() (any, error) { return int64(b), nil }

// DecodeConfigOnto decodes a `dealer:` section from its node on top of
// base (see yamlconf: strict, positions of the file) and validates. A nil
// node gives base, validated.
func DecodeConfigOnto(base Config, n *yaml.Node) (Config, error) {
	cfg := base
	if err := yamlconf.Decode(n, &cfg); err != nil {
		return base, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return cfg, cfg.Validate()
}
