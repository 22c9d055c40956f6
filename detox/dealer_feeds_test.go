package detox

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/inventory"
)

// The balancer's input is the latest cycle as recorded: none before the
// first cycle, then the sole copy the cycle kept as a last copy, and the
// protected share of each site's quota.
func TestLatestProtectionReadsTheRecordedCycle(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil, "")
	hist := NewHistory(h.d)
	p, err := hist.LatestProtection(ctx, "Default")
	require.NoError(t, err)
	require.Nil(t, p, "no cycle yet")

	h.doc.Sites = append(h.doc.Sites,
		inventory.InjectSite{Name: "T1_X_MSS", StorageType: inventory.StorageMSS, Status: inventory.SiteReady, Quotas: map[string]int64{"Default": 1000}},
		inventory.InjectSite{Name: "T2_A", StorageType: inventory.StorageDisk, Status: inventory.SiteReady})
	h.doc.Groups = append(h.doc.Groups, inventory.InjectGroup{Name: "DataOps"})
	h.addDataset("/Retired/R-v1/RAW", inventory.DatasetValid, 1, []string{"b1"}, []int64{100}, []int{2})
	h.addDataset("/Twice/R-v1/RAW", inventory.DatasetValid, 1, []string{"b1"}, []int64{40}, []int{1})
	h.doc.DatasetReplicas = append(h.doc.DatasetReplicas,
		inventory.InjectDatasetReplica{Dataset: "/Retired/R-v1/RAW", Site: "T1_X_MSS", Group: "DataOps"},
		inventory.InjectDatasetReplica{Dataset: "/Twice/R-v1/RAW", Site: "T1_X_MSS", Group: "DataOps"},
		inventory.InjectDatasetReplica{Dataset: "/Twice/R-v1/RAW", Site: "T2_A", Group: "DataOps"})
	pol, err := policy.ParsePolicy("tape.txt", []byte("Partition Default\nOn site.name == T1_*\nWhen always\nUntil never\nDelete dataset.name == /*/R-v1/RAW\nProtect\n"), policy.PolicyOptions{})
	require.NoError(t, err)
	h.pol = pol
	plan := h.runPlan()
	require.Equal(t, ReasonLastCopy, h.decisions("/Retired/R-v1/RAW", "T1_X_MSS")[0].Reason)
	id, err := hist.Record(ctx, plan, StatusPlanned, true, "", time.Now())
	require.NoError(t, err)

	p, err = hist.LatestProtection(ctx, "Default")
	require.NoError(t, err)
	require.NotNil(t, p)
	require.Equal(t, id, p.Cycle)
	require.Equal(t, map[string][]string{"T1_X_MSS": {"/Retired/R-v1/RAW"}}, p.LastCopies)
	sites, err := hist.Sites(ctx, id)
	require.NoError(t, err)
	for _, s := range sites {
		if s.Site == "T1_X_MSS" {
			require.Positive(t, s.ProtectedBytes)
			require.InDelta(t, float64(s.ProtectedBytes)/1000, p.Fractions["T1_X_MSS"], 1e-9)
		}
	}
}

// Accesses come back summed over sites, per dataset and day, from the
// day asked for on.
func TestDailyAccessesSumOverSites(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil, "")
	day1 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	day2 := day1.Add(24 * time.Hour)
	require.NoError(t, RecordAccess(ctx, h.d,
		Access{Dataset: "/A/B-v1/AOD", Site: "T2_X", Count: 3, At: day1},
		Access{Dataset: "/A/B-v1/AOD", Site: "T2_Y", Count: 2, At: day1.Add(8 * time.Hour)},
		Access{Dataset: "/A/B-v1/AOD", Site: "T2_X", Count: 7, At: day2},
		Access{Dataset: "/C/D-v1/RAW", Site: "T2_X", Count: 1, At: day2}))
	all, err := DBAccesses{DB: h.d}.DailyAccesses(ctx, 0)
	require.NoError(t, err)
	got := map[string]int64{}
	for _, a := range all {
		got[a.Dataset+"@"+time.Unix(a.Day, 0).UTC().Format("01-02")] = a.Count
	}
	require.Equal(t, map[string]int64{"/A/B-v1/AOD@11-01": 5, "/A/B-v1/AOD@11-02": 7, "/C/D-v1/RAW@11-02": 1}, got)
	later, err := DBAccesses{DB: h.d}.DailyAccesses(ctx, day2.Truncate(24*time.Hour).Unix())
	require.NoError(t, err)
	require.Len(t, later, 2)
}
