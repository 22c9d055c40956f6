package scheduler

import (
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"
)

// newCron builds the cron runner: UTC, seconds optional, and the job
// chain SkipIfStillRunning then Recover. The order is load-bearing with
// robfig/cron v3.0.1: SkipIfStillRunning returns its token only when the
// job returns normally, so if Recover were outside it a job that panicked
// once would be skipped silently forever (STYLE.md 8.2; the test
// TestCronPanicOnceStillRuns fails if the order is swapped).
func newCron(log *logrus.Entry) *cron.Cron {
	l := cronLogger{log.WithField("part", "cron")}
	return cron.New(cron.WithLocation(time.UTC), cron.WithParser(cronParser), cron.WithLogger(l),
		cron.WithChain(cron.SkipIfStillRunning(l), cron.Recover(l)))
}

// cronLogger adapts logrus to cron.Logger.
type cronLogger struct{ e *logrus.Entry }

// Info implements cron.Logger.
func (c cronLogger) Info(msg string, kv ...any) {
	// cron logs every wake-up at Info; that is debug detail for us, except
	// for skips, which operators should see.
	if msg == "skip" {
		c.e.WithFields(fields(kv)).Warn("cron: previous run still going; skipped")
		return
	}
	c.e.WithFields(fields(kv)).Debug("cron: " + msg)
}

// Error implements cron.Logger.
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.e.WithError(err).WithFields(fields(kv)).Error("cron: " + msg)
}

func fields(kv []any) logrus.Fields {
	f := logrus.Fields{}
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok {
			f[k] = kv[i+1]
		}
	}
	return f
}
