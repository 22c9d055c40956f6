package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dynamo-go/dynamo/internal/testdb"
)

// A component's own schedule runs its app with no configuration; an
// operator's cron entry for the same app replaces it; bad schedules and
// late additions are refused.
func TestAddCronDefaultSchedule(t *testing.T) {
	d := testdb.SQLite(t)
	cfg := fastConfig("a")
	cfg.Cron = []CronEntry{{App: AppNoop, Schedule: "@every 1h"}}
	s := newScheduler(t, d, cfg, nil)
	if added, err := s.AddCron(CronEntry{App: AppNoop, Schedule: "@every 1s"}); added || err != nil {
		t.Fatalf("configured app: added %v, %v", added, err)
	}
	if _, err := s.AddCron(CronEntry{App: AppNoopWriter, Schedule: "every second"}); !errors.Is(err, ErrBadApp) {
		t.Fatalf("bad schedule: %v", err)
	}
	if added, err := s.AddCron(CronEntry{App: AppNoopWriter, Schedule: "@every 1s"}); !added || err != nil {
		t.Fatalf("default schedule: added %v, %v", added, err)
	}
	start(t, s)
	waitFor(t, "a cron run of noop-writer", 10*time.Second, func() bool {
		runs, err := s.Runs(context.Background(), RunFilter{App: AppNoopWriter})
		return err == nil && len(runs) > 0 && runs[0].Trigger == TriggerCron
	})
	if _, err := s.AddCron(CronEntry{App: AppNoop, Name: "late", Schedule: "@every 1s"}); !errors.Is(err, ErrBadApp) {
		t.Fatalf("after Run: %v", err)
	}
}
