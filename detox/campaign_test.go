package detox

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// policiesDir is CMS's dynamo-policies checkout beside the repository
// (scripts/test.sh's DYNAMO_POLICIES_DIR, relative to the repository root).
// Without it the test skips, and fails with CI=true.
func policiesDir(t *testing.T) string {
	dir := os.Getenv("DYNAMO_POLICIES_DIR")
	if dir == "" {
		dir = "../shared/reference/dynamo-policies"
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "partitions.txt")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("production policies not found at %s (set DYNAMO_POLICIES_DIR)", dir)
		}
		t.Skipf("production policies not found at %s", dir)
	}
	return dir
}

// TestTapeCampaignNeedsOptIn runs CMS's real 2019 tape campaign, which
// deletes whole tape copies of retired dataset families on purpose. Without
// the Tape partition's opt-in, a tape copy that is the only copy of its
// dataset is kept (last copy) while one whose data is also on disk goes;
// with the opt-in the sole copy goes too, marked LAST COPY.
func TestTapeCampaignNeedsOptIn(t *testing.T) {
	dir := policiesDir(t)
	parts, err := os.ReadFile(filepath.Join(dir, "partitions.txt"))
	require.NoError(t, err)
	pol, err := policy.LoadPolicy(filepath.Join(dir, "detox/campaigns/190604_tape.txt"), policy.PolicyOptions{})
	require.NoError(t, err)
	require.Equal(t, "Tape", pol.Partition)

	for _, allow := range []bool{false, true} {
		h := newHarness(t, nil, string(parts))
		h.doc.Sites = append(h.doc.Sites,
			inventory.InjectSite{Name: "T1_US_FNAL_MSS", StorageType: inventory.StorageMSS, Status: inventory.SiteReady},
			inventory.InjectSite{Name: "T2_CH_CERN", StorageType: inventory.StorageDisk, Status: inventory.SiteReady})
		h.doc.Groups = append(h.doc.Groups, inventory.InjectGroup{Name: "DataOps"})
		const (
			sole    = "/QCD_Pt-15to7000/RunIIFall17wmLHEGS-93X_mc2017_realistic_v3-v1/GEN-SIM"
			onDisk  = "/TTJets/RunIISummer15GS-MCRUN2_71_V1-v1/GEN-SIM"
			protect = "/MinBias_TuneCP5_13TeV-pythia8/RunIISummer18GS-101X_upgrade2018_realistic_v7-v1/GEN-SIM"
		)
		for _, ds := range []string{sole, onDisk, protect} {
			h.addDataset(ds, inventory.DatasetValid, 1, []string{"b1"}, []int64{1000}, []int{2})
			h.doc.DatasetReplicas = append(h.doc.DatasetReplicas, inventory.InjectDatasetReplica{Dataset: ds, Site: "T1_US_FNAL_MSS", Group: "DataOps"})
		}
		h.doc.DatasetReplicas = append(h.doc.DatasetReplicas, inventory.InjectDatasetReplica{Dataset: onDisk, Site: "T2_CH_CERN", Group: "DataOps"})
		h.pol = pol
		h.opts.AllowLastCopyDeletion = allow
		plan := h.runPlan()

		soleDec := h.decisions(sole, "T1_US_FNAL_MSS")
		require.Len(t, soleDec, 1)
		require.Equal(t, DecisionDelete, h.decisions(onDisk, "T1_US_FNAL_MSS")[0].Decision)
		require.Equal(t, DecisionProtect, h.decisions(protect, "T1_US_FNAL_MSS")[0].Decision)
		if !allow {
			require.Equal(t, DecisionProtect, soleDec[0].Decision)
			require.Equal(t, ReasonLastCopy, soleDec[0].Reason)
			require.Len(t, plan.Deletions, 1)
			continue
		}
		require.Equal(t, DecisionDelete, soleDec[0].Decision)
		require.Equal(t, ReasonLastCopyDeleted, soleDec[0].Reason)
		require.Len(t, plan.Deletions, 2)
		res, err := Apply(h.ctx, h.store, plan, ApplyOptions{AllowLastCopyDeletion: true, MaxLastCopyReplicas: 1, Queue: &MemQueue{}, At: h.now})
		require.NoError(t, err)
		require.Len(t, res.Deleted, 2)
		require.Equal(t, 1, res.LastCopies)
	}
}
