package detox

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory"
)

const applyPolicy = `Partition Default
On site.name == T2_A
When always
Until never
Protect dataset.name == /Keep/*/*
Dismiss
`

// seedApply: T2_A holds /Gone (2 blocks, 3 files) and /Keep; both have a
// second copy at T2_B, so the plan deletes /Gone at T2_A.
func seedApply(t *testing.T, d *db.DB) *harness {
	h := newHarness(t, d, "")
	h.doc.Sites = append(h.doc.Sites,
		inventory.InjectSite{Name: "T2_A", StorageType: inventory.StorageDisk, Status: inventory.SiteReady, Quotas: map[string]int64{"Default": 1000}},
		inventory.InjectSite{Name: "T2_B", StorageType: inventory.StorageDisk, Status: inventory.SiteReady, Quotas: map[string]int64{"Default": 1000}})
	h.doc.Groups = append(h.doc.Groups, inventory.InjectGroup{Name: "AnalysisOps"})
	h.addDataset("/Gone/R-v1/AOD", inventory.DatasetValid, 1, []string{"b1", "b2"}, []int64{100, 200}, []int{1, 2})
	h.addDataset("/Keep/R-v1/AOD", inventory.DatasetValid, 1, []string{"b1"}, []int64{50}, []int{1})
	for _, s := range []string{"T2_A", "T2_B"} {
		for _, ds := range []string{"/Gone/R-v1/AOD", "/Keep/R-v1/AOD"} {
			h.doc.DatasetReplicas = append(h.doc.DatasetReplicas, inventory.InjectDatasetReplica{Dataset: ds, Site: s, Group: "AnalysisOps", Growing: true})
		}
	}
	p, err := policy.ParsePolicy("apply.txt", []byte(applyPolicy), policy.PolicyOptions{})
	require.NoError(t, err)
	h.pol = p
	h.runPlan()
	require.Len(t, h.plan.Deletions, 2)
	return h
}

func TestApply(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		h := seedApply(t, d)
		site, _ := h.store.Snapshot().SiteByName("T2_A")
		part, _ := h.store.Snapshot().PartitionByName("Default")
		require.Equal(t, int64(350), h.store.Snapshot().Usage(site.ID, part.ID).Physical)

		// Caps refuse the whole plan and write nothing.
		q := &MemQueue{}
		_, err := Apply(ctx, h.store, h.plan, ApplyOptions{MaxVolume: 299, Queue: q})
		require.ErrorIs(t, err, ErrCapExceeded)
		_, err = Apply(ctx, h.store, h.plan, ApplyOptions{MaxFilesPerSite: 2, Queue: q})
		require.ErrorIs(t, err, ErrCapExceeded)
		require.Empty(t, q.Items)

		// Dry run: reports, writes nothing.
		res, err := Apply(ctx, h.store, h.plan, ApplyOptions{DryRun: true, Queue: q})
		require.NoError(t, err)
		require.Equal(t, int64(300), res.Bytes)
		require.Empty(t, q.Items)
		require.Equal(t, int64(350), h.store.Snapshot().Usage(site.ID, part.ID).Physical)

		// Real apply: quota released at once, files queued.
		res, err = Apply(ctx, h.store, h.plan, ApplyOptions{Queue: q, MaxVolume: 300, MaxFilesPerSite: 3, CycleID: 7})
		require.NoError(t, err)
		require.Equal(t, int64(300), res.Bytes)
		require.Len(t, q.Items, 3)
		for _, f := range q.Items {
			require.Equal(t, "T2_A", f.Site)
			require.Equal(t, int64(7), f.CycleID)
		}
		snap := h.store.Snapshot()
		require.Equal(t, int64(50), snap.Usage(site.ID, part.ID).Physical)
		require.Equal(t, int64(300), snap.PendingDeletion(site.ID))
		b, _ := snap.BlockByName("/Gone/R-v1/AOD#b1")
		br, ok := snap.BlockReplica(b.ID, site.ID)
		require.True(t, ok)
		require.True(t, br.PendingDeletion)
		// The emptied dataset replica stops growing; the kept one does not.
		growing := map[string]bool{}
		for _, name := range []string{"/Gone/R-v1/AOD", "/Keep/R-v1/AOD"} {
			ds, _ := snap.DatasetByName(name)
			for r := range snap.DatasetReplicas(ds.ID) {
				if r.Site == site.ID {
					growing[name] = r.Growing
				}
			}
		}
		require.Equal(t, map[string]bool{"/Gone/R-v1/AOD": false, "/Keep/R-v1/AOD": true}, growing)

		// The same plan again: everything is already pending, nothing new.
		res, err = Apply(ctx, h.store, h.plan, ApplyOptions{Queue: q})
		require.NoError(t, err)
		require.Empty(t, res.Deleted)
		require.Len(t, res.Skipped, 2)
		require.Equal(t, ReasonGone, res.Skipped[0].Why)

		// It survives a reload from the database.
		re, err := inventory.Load(ctx, d, h.log, nil, time.Now())
		require.NoError(t, err)
		br, _ = re.Snapshot().BlockReplica(b.ID, site.ID)
		require.True(t, br.PendingDeletion)
	})
}

// The applier re-checks safety against the current state: a lock taken or
// a copy lost after planning stops the deletion.
func TestApplyRechecks(t *testing.T) {
	ctx := context.Background()
	h := seedApply(t, nil)
	// Lose the T2_B copy of /Gone#b2 after planning: T2_A's is now the last.
	snap := h.store.Snapshot()
	b2, _ := snap.BlockByName("/Gone/R-v1/AOD#b2")
	siteB, _ := snap.SiteByName("T2_B")
	_, err := h.store.Write(ctx, time.Now(), func(t *inventory.Txn) error {
		return t.Add(inventory.DeleteBlockReplica{Block: b2.ID, Site: siteB.ID})
	})
	require.NoError(t, err)
	locks := &MemLocks{}
	locks.Add(Lock{Dataset: "/Gone/R-v1/AOD", Block: "b1", Sites: []string{"T2_A"}})
	q := &MemQueue{}
	res, err := Apply(ctx, h.store, h.plan, ApplyOptions{Queue: q, Locks: locks})
	require.NoError(t, err)
	require.Empty(t, res.Deleted)
	why := map[Reason]bool{}
	for _, s := range res.Skipped {
		why[s.Why] = true
	}
	require.Equal(t, map[Reason]bool{ReasonLocked: true, ReasonLastCopy: true}, why)
	require.Empty(t, q.Items)
}

type failQueue struct{}

func (failQueue) QueueDeletions(context.Context, []FileDeletion) error {
	return errors.New("fileop down")
}

func TestApplyQueueFailureKeepsPending(t *testing.T) {
	h := seedApply(t, nil)
	_, err := Apply(context.Background(), h.store, h.plan, ApplyOptions{Queue: failQueue{}})
	require.ErrorContains(t, err, "fileop down")
	site, _ := h.store.Snapshot().SiteByName("T2_A")
	require.Equal(t, int64(300), h.store.Snapshot().PendingDeletion(site.ID))
}

func TestHistoryAndAccesses(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		h := seedApply(t, d)
		hist := NewHistory(d)
		id, err := hist.Record(ctx, h.plan, StatusPlanned, true, "", time.Now())
		require.NoError(t, err)
		require.NoError(t, hist.Finish(ctx, id, StatusApplied, "ok", time.Now()))
		cs, err := hist.Cycles(ctx, "Default", 10)
		require.NoError(t, err)
		require.Len(t, cs, 1)
		require.Equal(t, StatusApplied, cs[0].Status)
		c, err := hist.Cycle(ctx, id)
		require.NoError(t, err)
		require.Equal(t, applyPolicy, c.PolicyText)
		sites, err := hist.Sites(ctx, id)
		require.NoError(t, err)
		require.Len(t, sites, 1)
		require.Equal(t, int64(300), sites[0].DeletedBytes)
		reps, err := hist.Replicas(ctx, id, "T2_A", "/Keep/R-v1/AOD", 0, 0)
		require.NoError(t, err)
		require.Len(t, reps, 1)
		require.Equal(t, "protect", reps[0].Decision)
		require.Equal(t, 5, reps[0].Line)
		require.Equal(t, "Protect dataset.name == /Keep/*/*", reps[0].RuleText)
		_, err = hist.Cycle(ctx, id+100)
		require.ErrorIs(t, err, ErrNoCycle)

		at := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
		require.NoError(t, RecordAccess(ctx, d, Access{Dataset: "/Gone/R-v1/AOD", Site: "T2_A", Count: 2, At: at},
			Access{Dataset: "/Gone/R-v1/AOD", Site: "T2_A", Count: 3, At: at.Add(time.Hour)}))
		require.ErrorIs(t, RecordAccess(ctx, d, Access{Dataset: "bad", Site: "T2_A", Count: 1, At: at}), ErrAccess)
		acc, err := DBAccesses{DB: d}.Accesses(ctx, at.Add(48*time.Hour))
		require.NoError(t, err)
		require.Equal(t, []AccessSummary{{Dataset: "/Gone/R-v1/AOD", Site: "T2_A", NumAccess: 5, LastAccess: at.Add(time.Hour).Unix()}}, acc)
	})
}

// A plan's hand-overs are applied as owner changes, not deletions.
func TestApplyReowns(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil, "")
	h.doc.Sites = append(h.doc.Sites,
		inventory.InjectSite{Name: "T2_A", StorageType: inventory.StorageDisk, Status: inventory.SiteReady, Quotas: map[string]int64{"Default": 1000}},
		inventory.InjectSite{Name: "T2_B", StorageType: inventory.StorageDisk, Status: inventory.SiteReady, Quotas: map[string]int64{"Default": 1000}})
	h.doc.Groups = append(h.doc.Groups, inventory.InjectGroup{Name: "AnalysisOps"}, inventory.InjectGroup{Name: "DataOps", Level: inventory.OwnBlock})
	h.addDataset("/Shared/R-v1/AOD", inventory.DatasetValid, 1, []string{"b1", "b2"}, []int64{100, 200}, []int{1, 1})
	h.doc.DatasetReplicas = append(h.doc.DatasetReplicas,
		inventory.InjectDatasetReplica{Dataset: "/Shared/R-v1/AOD", Site: "T2_A", Group: "AnalysisOps", Blocks: []string{"b1"}},
		inventory.InjectDatasetReplica{Dataset: "/Shared/R-v1/AOD", Site: "T2_B", Group: "AnalysisOps"})
	h.doc.BlockReplicas = append(h.doc.BlockReplicas, inventory.InjectBlockReplica{Block: "/Shared/R-v1/AOD#b2", Site: "T2_A", Group: "DataOps"})
	p, err := policy.ParsePolicy("reown.txt", []byte("Partition Default\nOn site.name == T2_A\nWhen always\nUntil never\nDeleteBlock blockreplica.owner == DataOps\nProtect\n"), policy.PolicyOptions{})
	require.NoError(t, err)
	h.pol = p
	h.runPlan()
	require.Empty(t, h.plan.Deletions)
	require.Len(t, h.plan.Reassignments, 1)
	res, err := Apply(ctx, h.store, h.plan, ApplyOptions{})
	require.NoError(t, err)
	require.Len(t, res.Reowned, 1)
	snap := h.store.Snapshot()
	b2, _ := snap.BlockByName("/Shared/R-v1/AOD#b2")
	site, _ := snap.SiteByName("T2_A")
	br, _ := snap.BlockReplica(b2.ID, site.ID)
	ana, _ := snap.GroupByName("AnalysisOps")
	require.Equal(t, ana.ID, br.Group)
	require.False(t, br.PendingDeletion)
}

// A site that becomes unusable after planning (morgue) no longer holds
// the other copy: the applier keeps both replicas the plan deleted.
func TestApplyRechecksSiteStatus(t *testing.T) {
	ctx := context.Background()
	h := seedApply(t, nil)
	_, err := h.store.Inject(ctx, time.Now(), &inventory.InjectDoc{Sites: []inventory.InjectSite{
		{Name: "T2_B", StorageType: inventory.StorageDisk, Status: inventory.SiteMorgue}}})
	require.NoError(t, err)
	q := &MemQueue{}
	res, err := Apply(ctx, h.store, h.plan, ApplyOptions{Queue: q})
	require.NoError(t, err)
	require.Empty(t, res.Deleted)
	require.Len(t, res.Skipped, 2)
	for _, s := range res.Skipped {
		require.Equal(t, ReasonLastCopy, s.Why)
	}
	require.Empty(t, q.Items)
}

// Deliberate retirement: a Delete line in a partition that opted in
// removes a sole tape copy; the deletion is marked LAST COPY in the plan,
// the result and the queued files, and its own cap applies. Without the
// opt-in at apply time the plan is refused whole.
func TestApplyLastCopyOptIn(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil, "")
	h.doc.Sites = append(h.doc.Sites,
		inventory.InjectSite{Name: "T1_X_MSS", StorageType: inventory.StorageMSS, Status: inventory.SiteReady},
		inventory.InjectSite{Name: "T2_A", StorageType: inventory.StorageDisk, Status: inventory.SiteReady})
	h.doc.Groups = append(h.doc.Groups, inventory.InjectGroup{Name: "DataOps"})
	h.addDataset("/Retired/R-v1/RAW", inventory.DatasetValid, 1, []string{"b1"}, []int64{100}, []int{2})
	h.addDataset("/Twice/R-v1/RAW", inventory.DatasetValid, 1, []string{"b1"}, []int64{40}, []int{1})
	h.doc.DatasetReplicas = append(h.doc.DatasetReplicas,
		inventory.InjectDatasetReplica{Dataset: "/Retired/R-v1/RAW", Site: "T1_X_MSS", Group: "DataOps"},
		inventory.InjectDatasetReplica{Dataset: "/Twice/R-v1/RAW", Site: "T1_X_MSS", Group: "DataOps"},
		inventory.InjectDatasetReplica{Dataset: "/Twice/R-v1/RAW", Site: "T2_A", Group: "DataOps"})
	p, err := policy.ParsePolicy("tape.txt", []byte("Partition Default\nOn site.name == T1_*\nWhen always\nUntil never\nDelete dataset.name == /*/R-v1/RAW\nProtect\n"), policy.PolicyOptions{})
	require.NoError(t, err)
	h.pol = p

	// Without the opt-in the plan keeps the sole copy.
	plan := h.runPlan()
	require.Len(t, plan.Deletions, 1)
	require.False(t, plan.Deletions[0].LastCopy)
	require.Equal(t, ReasonLastCopy, h.decisions("/Retired/R-v1/RAW", "T1_X_MSS")[0].Reason)

	h.opts.AllowLastCopyDeletion = true
	plan = h.runPlan()
	require.Len(t, plan.Deletions, 2)
	var last Deletion
	for _, d := range plan.Deletions {
		if d.LastCopy {
			last = d
		}
	}
	require.Equal(t, ReasonLastCopyDeleted, last.Reason)
	require.Equal(t, ReasonLastCopyDeleted, h.decisions("/Retired/R-v1/RAW", "T1_X_MSS")[0].Reason)

	q := &MemQueue{}
	_, err = Apply(ctx, h.store, plan, ApplyOptions{Queue: q})
	require.ErrorIs(t, err, ErrCapExceeded, "a LAST COPY plan applied without the opt-in")
	_, err = Apply(ctx, h.store, plan, ApplyOptions{Queue: q, AllowLastCopyDeletion: true, MaxLastCopyVolume: 99})
	require.ErrorIs(t, err, ErrCapExceeded)
	require.Empty(t, q.Items)
	res, err := Apply(ctx, h.store, plan, ApplyOptions{Queue: q, AllowLastCopyDeletion: true, MaxLastCopyVolume: 100, MaxLastCopyReplicas: 1})
	require.NoError(t, err)
	require.Len(t, res.Deleted, 2)
	require.Equal(t, 1, res.LastCopies)
	n := 0
	for _, f := range q.Items {
		if f.LastCopy {
			require.Equal(t, "/Retired/R-v1/RAW#b1", f.Block)
			n++
		}
	}
	require.Equal(t, 2, n)
}
