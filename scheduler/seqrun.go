package scheduler

import (
	"errors"
	"time"

	"github.com/sirupsen/logrus"
)

// runSequence executes one sequence for a term: from its stored position
// (or the first step if the header says restart), step by step, looping
// at the end, until TERMINATE or the end of scheduling. The position is
// stored before each step, so the next lease holder resumes there.
func (s *Scheduler) runSequence(t *term, q *Sequence) {
	log := s.log.WithField("sequence", q.Name)
	ctx := t.sched
	pos := 0
	if !q.Restart {
		p, ok, err := s.hist.seqPos(ctx, q.Name)
		switch {
		case err != nil:
			log.WithError(err).Warn("sequence position unknown; starting from the first step")
		case ok && p == seqTerminated:
			log.Info("sequence terminated earlier; not started (mark it restart to run it at every start)")
			return
		case ok && p >= 0 && p < len(q.Steps):
			pos = p
		}
	}
	log.WithField("step", pos).Info("sequence started")
	for ctx.Err() == nil {
		if pos >= len(q.Steps) {
			pos = 0
		}
		if err := s.hist.setSeqPos(ctx, q.Name, pos, time.Now()); err != nil && ctx.Err() == nil {
			log.WithError(err).Warn("recording sequence position")
		}
		st := q.Steps[pos]
		switch st.Kind {
		case StepWait:
			if !sleepCtx(ctx, st.Wait) {
				return
			}
			pos++
		case StepTerminate:
			if err := s.hist.setSeqPos(ctx, q.Name, seqTerminated, time.Now()); err != nil {
				log.WithError(err).Warn("recording sequence end")
			}
			log.WithField("line", st.Line).Info("sequence terminated")
			return
		case StepRun:
			next, ok := s.seqStep(t, q, st, pos, log)
			if !ok {
				return
			}
			pos = next
		}
	}
}

// seqStep runs one step and returns the next position; ok is false when
// scheduling ended.
func (s *Scheduler) seqStep(t *term, q *Sequence, st Step, pos int, log *logrus.Entry) (next int, ok bool) {
	ctx := t.sched
	req := runRequest{App: st.App, Args: st.Args, Timeout: st.Timeout, ReadOnly: !st.Write,
		Trigger: TriggerSequence, TriggerName: q.Name}
	p, _, err := s.begin(ctx, t, req)
	var r Run
	switch {
	case errors.Is(err, ErrPaused):
		return pos + 1, true // recorded as skipped; a paused app is not a failure
	case err != nil:
		if ctx.Err() != nil || errors.Is(err, ErrShuttingDown) {
			return pos, false
		}
		r = Run{Status: StatusFailed, Error: err.Error()}
	default:
		r = s.complete(p)
	}
	if r.Status == StatusOK {
		return pos + 1, true
	}
	if r.Status == StatusCancelled || ctx.Err() != nil {
		return pos, false // rerun this step under the next term
	}
	s.m.seqFailures.WithLabelValues(q.Name).Inc()
	l := log.WithFields(logrus.Fields{"line": st.Line, "app": st.App, "run": r.ID, "status": r.Status, "error": r.Error,
		"on_failure": st.OnFail.String()})
	switch st.OnFail {
	case FailContinue:
		l.Warn("sequence step failed; continuing")
		return pos + 1, true
	case FailRepeat:
		l.Error("sequence step failed; repeating it")
		return pos, sleepCtx(ctx, s.cfg.RetryDelay)
	default:
		l.Error("sequence step failed; restarting the sequence")
		return 0, sleepCtx(ctx, s.cfg.RetryDelay)
	}
}
