package detox

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynamo-go/dynamo/internal/testdb"
)

// TestApplyRechecksLocksWithGroups: a lock taken between planning and
// applying stops a deletion only when it covers the replica's owner, the
// same rule planning uses.
func TestApplyRechecksLocksWithGroups(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		lock   Lock
		locked bool
	}{
		{"owner listed", Lock{Dataset: "/Gone/*", Groups: []string{"AnalysisOps"}}, true},
		{"other owner", Lock{Dataset: "/Gone/*", Groups: []string{"DataOps"}}, false},
		{"unknown group", Lock{Dataset: "/Gone/R-v1/AOD", Groups: []string{"NoSuchGroup"}}, false},
		{"other site", Lock{Dataset: "/Gone/R-v1/AOD", Sites: []string{"T2_B"}}, false},
		{"unknown site", Lock{Dataset: "/Gone/R-v1/AOD", Sites: []string{"T2_X"}}, false},
		{"every site and owner", Lock{Dataset: "/Gone/R-v1/AOD"}, true},
		{"expired", Lock{Dataset: "/Gone/R-v1/AOD", Expires: time.Unix(1, 0)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := seedApply(t, testdb.SQLite(t))
			locks := &MemLocks{}
			locks.Add(tc.lock)
			res, err := Apply(ctx, h.store, h.plan, ApplyOptions{Queue: &MemQueue{}, Locks: locks, DryRun: true})
			require.NoError(t, err)
			if tc.locked {
				require.Empty(t, res.Deleted)
				for _, s := range res.Skipped {
					require.Equal(t, ReasonLocked, s.Why)
				}
			} else {
				require.Len(t, res.Deleted, len(h.plan.Deletions))
			}
		})
	}
}

func TestLockGlobThatDoesNotCompileIsAnError(t *testing.T) {
	h := seedApply(t, testdb.SQLite(t))
	_, err := newLockIndex(h.store.Snapshot(), []Lock{{ID: 9, Dataset: "/Gone/[x"}}, time.Now())
	require.ErrorContains(t, err, "lock 9")
}
