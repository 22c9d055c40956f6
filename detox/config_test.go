package detox

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

func TestConfig(t *testing.T) {
	c, err := yamlconf.Load("testdata/config/good.yaml", DecodeConfig)
	require.NoError(t, err)
	require.Equal(t, 0.02, c.Step("Physics"))
	require.Equal(t, DefaultDeletionPerIteration, c.Step("RelVal"))
	require.True(t, c.Partitions["RelVal"].AllowLastCopyDeletion)
	require.Equal(t, 5000, c.Partitions["RelVal"].MaxLastCopyReplicas)
	require.Equal(t, int64(200000), c.MaxFilesPerSite)
	require.Equal(t, CopyScopeInventory, c.Partitions["Physics"].CopyCounts)
	require.True(t, c.Partitions["RelVal"].CopyCounts.partition(), "the partition's view is the default")
	require.Equal(t, 3, (&Runner{Config: c}).PlanOptions("Physics", time.Time{}).Workers, "plan_workers reaches every cycle's options")
	def := DefaultConfig()
	require.Equal(t, max(1, runtime.GOMAXPROCS(0)-1), (&Runner{Config: def}).PlanOptions("Physics", time.Time{}).Workers,
		"by default a cycle leaves one core to the server")

	for _, tc := range []struct{ file, want string }{
		{"unknown-key.bad.yaml", "unknown-key.bad.yaml:3:5: partitions.Physics.polcy: unknown key"},
		{"step.bad.yaml", "detox.deletion_per_iteration 1.5"},
		{"volume.bad.yaml", "detox.max_volume_per_cycle -1"},
		{"files.bad.yaml", "detox.max_files_per_site -3"},
		{"workers.bad.yaml", "detox.plan_workers -2: must be >= 0"},
		{"nopolicy.bad.yaml", "detox.partitions.Physics.policy: required"},
		{"assume.bad.yaml", "unknown producer \"popularity\""},
		{"lastcopy-nocap.bad.yaml", "detox.partitions.Tape.allow_last_copy_deletion needs a cap"},
		{"lastcopy-noallow.bad.yaml", "max_last_copy_* without allow_last_copy_deletion"},
		{"copycounts.bad.yaml", `detox.partitions.Physics.copy_counts "site": must be "partition" or "inventory"`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := yamlconf.Load(filepath.Join("testdata/config", tc.file), DecodeConfig)
			require.ErrorIs(t, err, ErrConfig)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// A policy using an attribute no producer provides does not load: the
// error names every such variable and its line.
func TestMissingProducer(t *testing.T) {
	p, err := policy.LoadPolicy("testdata/policies/physics-default.txt", policy.PolicyOptions{})
	require.NoError(t, err)
	var src Sources
	err = src.CheckProducers(p)
	require.ErrorIs(t, err, ErrNoProducer)
	for _, want := range []string{
		"physics-default.txt:14: blockreplica.is_locked needs the \"locks\" producer",
		"physics-default.txt:19: replica.enforcer_protected needs the \"enforcer\" producer",
		"physics-default.txt:21: dataset.unhandled_copy_exists needs the \"unhandled_copy\" producer",
		"dataset.usage_rank needs the \"accesses\" producer",
	} {
		require.ErrorContains(t, err, want)
	}
	require.NotContains(t, err.Error(), "on_tape") // tape coverage comes from the inventory
	_, err = PlanCycle(context.Background(), nil, p, PlanOptions{})
	require.ErrorIs(t, err, ErrNoProducer)

	require.NoError(t, src.FillEmpty("locks", "enforcer", "unhandled_copy", "tape_request", "protected_site", "accesses"))
	require.NoError(t, src.CheckProducers(p))
	require.ErrorIs(t, src.FillEmpty("popularity"), ErrConfig)
}
