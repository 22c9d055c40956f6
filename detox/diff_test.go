package detox

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/policy"
)

// The same policy under the two copy-count scopes, planned on one
// snapshot: the only change is the T2_US_MIT replica, protected by line 5
// on the partition's view and dismissed and deleted on the inventory's.
func TestDiffPlansScopes(t *testing.T) {
	h := newHarness(t, nil, "")
	names := scenarioNames{sites: map[string]bool{}, datasets: map[string]map[string]bool{}}
	for _, l := range []string{
		"site T2_US_MIT disk ready Default=1000",
		"site T2_CH_CERN disk ready Default=1000",
		"site T1_US_FNAL_Disk disk ready Default=1000",
		"group DataOps dataset",
		"dataset /A/R-v1/AOD valid b1=100 b2=50",
		"dataset /B/R-v1/AOD valid b1=70",
		"replica /A/R-v1/AOD T2_US_MIT DataOps",
		"replica /A/R-v1/AOD T2_CH_CERN None",
		"replica /A/R-v1/AOD T1_US_FNAL_Disk DataOps",
		"replica /B/R-v1/AOD T2_US_MIT DataOps",
		"replica /B/R-v1/AOD T2_CH_CERN DataOps",
	} {
		scenarioLoad(t, h, names, "diff", strings.Fields(l))
	}
	pol, err := policy.ParsePolicy("scopes.txt", []byte(`Partition Default
On site.name == T2_*
When always
Until never
Protect dataset.num_full_disk_copy < 2
Protect dataset.name == /B/*/*
Dismiss
Order increasing replica.size
`), policy.PolicyOptions{})
	require.NoError(t, err)
	h.pol = pol
	h.opts.CopyCounts = CopyScopePartition
	a := h.runPlan()
	h.opts.CopyCounts = CopyScopeInventory
	b := h.runPlan()

	diff, err := DiffPlans(a, b)
	require.NoError(t, err)
	require.Len(t, diff, 1, "only T2_US_MIT changes: /B is protected by name under both scopes")
	sd := diff[0]
	require.Equal(t, "T2_US_MIT", sd.Site)
	require.Equal(t, int64(150), sd.Freed)
	require.Zero(t, sd.Kept)
	require.Len(t, sd.Changes, 1)
	c := sd.Changes[0]
	require.Equal(t, "/A/R-v1/AOD", c.Dataset)
	require.Nil(t, c.Blocks, "the whole replica changes")
	require.Equal(t, int64(150), c.Size)
	require.Equal(t, DiffSide{Decision: DecisionProtect, Line: 5, Rule: "Protect dataset.num_full_disk_copy < 2", Reason: ReasonRule}, c.A)
	require.Equal(t, DecisionDelete, c.B.Decision)
	require.Equal(t, 0, c.B.Line, "the default line decided")
	require.Equal(t, ReasonDismissed, c.B.Reason)

	// Reversed, the bytes move the other way.
	rev, err := DiffPlans(b, a)
	require.NoError(t, err)
	require.Equal(t, int64(150), rev[0].Kept)
	require.Zero(t, rev[0].Freed)

	// The same plan against itself: nothing changes.
	same, err := DiffPlans(a, a)
	require.NoError(t, err)
	require.Empty(t, same)
}
