package detox

import (
	"errors"
	"fmt"
	"runtime"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

// Config is the `detox:` section of the dynamo configuration.
//
// Zero values mean "use the default"; DefaultConfig shows them. Decode with
// DecodeConfig (strict: unknown keys are errors) and check with Validate.
type Config struct {
	// PartitionsFile is the partitions definition (policy language,
	// `Name: condition` lines). Empty: the inventory's default partition.
	PartitionsFile string `yaml:"partitions_file"`
	// Partitions configures each partition Detox runs on, by name.
	Partitions map[string]PartitionConfig `yaml:"partitions"`
	// DeletionPerIteration is the largest fraction of a site's quota one
	// iteration deletes before re-evaluating (Dynamo: 0.01).
	DeletionPerIteration float64 `yaml:"deletion_per_iteration"`
	// MaxVolumePerCycle caps the bytes one cycle may delete (all sites
	// together); a plan above it is refused by Apply. 0: no cap.
	MaxVolumePerCycle int64 `yaml:"max_volume_per_cycle"`
	// MaxFilesPerSite caps the files one cycle may delete at any one site;
	// a plan above it is refused by Apply. 0: no cap.
	MaxFilesPerSite int64 `yaml:"max_files_per_site"`
	// DryRun plans and records cycles but never applies them.
	DryRun bool `yaml:"dry_run"`
	// AssumeEmpty names producers to treat as knowing nothing (no flagged
	// dataset, no protected replica) while they are not wired, so that a
	// policy using them loads; see Sources.FillEmpty.
	AssumeEmpty []string `yaml:"assume_empty"`
	// PlanWorkers caps the goroutines a cycle plans with. 0: all the
	// process's cores but one (at least one), so that a server keeps a
	// core free for REST and storage requests while a cycle runs: with
	// every P busy planning, Go notices ready connections only every 10
	// ms and each request waits several such turns.
	PlanWorkers int `yaml:"plan_workers"`
}

// Workers is the number of goroutines cycles plan with under c (see
// PlanWorkers).
func (c *Config) Workers() int {
	if c.PlanWorkers > 0 {
		return c.PlanWorkers
	}
	return max(1, runtime.GOMAXPROCS(0)-1)
}

// PartitionConfig is the Detox configuration of one partition.
type PartitionConfig struct {
	// Policy is the policy file path.
	Policy string `yaml:"policy"`
	// AllowLastCopyDeletion is the explicit opt-in for deliberate
	// retirement of data (tape campaigns): a Delete line may then remove
	// the last copy of a block in this partition (no other complete copy
	// at a ready or waitroom site). Each such deletion is marked LAST COPY
	// in the plan, the dry run and the cycle history. Dismiss never can.
	// It requires MaxLastCopyVolume or MaxLastCopyReplicas.
	AllowLastCopyDeletion bool `yaml:"allow_last_copy_deletion"`
	// MaxLastCopyVolume caps the bytes of last copies one cycle may delete
	// in this partition; a plan above it is refused by Apply. 0: no cap.
	MaxLastCopyVolume int64 `yaml:"max_last_copy_volume"`
	// MaxLastCopyReplicas caps the block replicas that are last copies
	// one cycle may delete in this partition. 0: no cap.
	MaxLastCopyReplicas int `yaml:"max_last_copy_replicas"`
	// DeletionPerIteration overrides Config.DeletionPerIteration.
	DeletionPerIteration float64 `yaml:"deletion_per_iteration"`
	// CopyCounts is the scope the copy-counting and fullness variables
	// are evaluated on (CopyScope): "partition" (the default, Dynamo's
	// semantics, so a migrated Dynamo policy makes Dynamo's decisions) or
	// "inventory". It never changes the last-copy guard.
	CopyCounts CopyScope `yaml:"copy_counts"`
}

// DefaultDeletionPerIteration is Dynamo's step: 1 % of the quota.
const DefaultDeletionPerIteration = 0.01

// ErrConfig is wrapped by every configuration problem.
var ErrConfig = errors.New("invalid detox configuration")

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{DeletionPerIteration: DefaultDeletionPerIteration}
}

// ApplyDefaults fills zero values with defaults.
func (c *Config) ApplyDefaults() {
	if c.DeletionPerIteration == 0 {
		c.DeletionPerIteration = DefaultDeletionPerIteration
	}
}

// Validate reports every problem, naming the key.
func (c *Config) Validate() error {
	var errs []error
	if c.DeletionPerIteration <= 0 || c.DeletionPerIteration > 1 {
		errs = append(errs, fmt.Errorf("%w: detox.deletion_per_iteration %v: must be in (0, 1]", ErrConfig, c.DeletionPerIteration))
	}
	if c.MaxVolumePerCycle < 0 {
		errs = append(errs, fmt.Errorf("%w: detox.max_volume_per_cycle %d: must be >= 0", ErrConfig, c.MaxVolumePerCycle))
	}
	if c.PlanWorkers < 0 {
		errs = append(errs, fmt.Errorf("%w: detox.plan_workers %d: must be >= 0 (0: all cores but one)", ErrConfig, c.PlanWorkers))
	}
	if c.MaxFilesPerSite < 0 {
		errs = append(errs, fmt.Errorf("%w: detox.max_files_per_site %d: must be >= 0", ErrConfig, c.MaxFilesPerSite))
	}
	if err := (&Sources{}).FillEmpty(c.AssumeEmpty...); err != nil {
		errs = append(errs, fmt.Errorf("detox.assume_empty: %w", err))
	}
	for name, p := range c.Partitions {
		if p.Policy == "" {
			errs = append(errs, fmt.Errorf("%w: detox.partitions.%s.policy: required", ErrConfig, name))
		}
		if p.MaxLastCopyVolume < 0 || p.MaxLastCopyReplicas < 0 {
			errs = append(errs, fmt.Errorf("%w: detox.partitions.%s: max_last_copy_volume and max_last_copy_replicas must be >= 0", ErrConfig, name))
		}
		if p.AllowLastCopyDeletion && p.MaxLastCopyVolume == 0 && p.MaxLastCopyReplicas == 0 {
			errs = append(errs, fmt.Errorf("%w: detox.partitions.%s.allow_last_copy_deletion needs a cap: set max_last_copy_volume and/or max_last_copy_replicas", ErrConfig, name))
		}
		if !p.AllowLastCopyDeletion && (p.MaxLastCopyVolume != 0 || p.MaxLastCopyReplicas != 0) {
			errs = append(errs, fmt.Errorf("%w: detox.partitions.%s: max_last_copy_* without allow_last_copy_deletion", ErrConfig, name))
		}
		if !p.CopyCounts.valid() {
			errs = append(errs, fmt.Errorf("%w: detox.partitions.%s.copy_counts %q: must be %q or %q", ErrConfig, name, p.CopyCounts, CopyScopePartition, CopyScopeInventory))
		}
		if p.DeletionPerIteration < 0 || p.DeletionPerIteration > 1 {
			errs = append(errs, fmt.Errorf("%w: detox.partitions.%s.deletion_per_iteration %v: must be in (0, 1]", ErrConfig, name, p.DeletionPerIteration))
		}
	}
	return errors.Join(errs...)
}

// Step returns the per-iteration quota fraction for a partition.
func (c *Config) Step(partition string) float64 {
	if p, ok := c.Partitions[partition]; ok && p.DeletionPerIteration > 0 {
		return p.DeletionPerIteration
	}
	if c.DeletionPerIteration > 0 {
		return c.DeletionPerIteration
	}
	return DefaultDeletionPerIteration
}

// DecodeConfig decodes a `detox:` section from its node (see yamlconf:
// strict, positions of the file) over the defaults and validates. A nil
// node gives the defaults.
func DecodeConfig(n *yaml.Node) (Config, error) {
	c := DefaultConfig()
	if err := yamlconf.Decode(n, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
