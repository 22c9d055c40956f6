package fileop

import (
	"context"
	"time"
)

// Task is one file operation inside a batch, with resolved storage URLs.
type Task struct {
	SubID   int64
	LFN     string
	Size    int64
	Adler32 string // expected adler32 from the inventory; "" if unknown
	// Source is the source PFN (transfers only).
	Source string
	// Target is the destination PFN of a transfer, or the file to delete.
	Target string
}

// Batch is a group of tasks of one op between one source site and one
// destination (or on one site, for deletions), handed to a backend at once.
type Batch struct {
	ID         int64
	Op         Op
	SourceSite string
	Site       string
	// JobID is the backend's handle recorded by an earlier Submit of this
	// batch ("" if none was recorded, e.g. a crash came between the two).
	JobID string
	Tasks []Task
}

// Verdict is the outcome of checksum verification.
type Verdict string

// Checksum verdicts recorded in the history.
const (
	VerdictOK        Verdict = "ok"       // computed sum equals the expected one(s)
	VerdictMismatch  Verdict = "mismatch" // a sum differed; the copy was removed
	VerdictUnchecked Verdict = "unchecked"
)

// Transfer modes recorded in the history.
const (
	ModeStream  = "stream"
	ModeTPC     = "tpc"
	ModePresent = "present"
)

// Result reports the end of one task. Err nil means success.
type Result struct {
	SubID   int64
	BatchID int64
	Err     error
	// Recoverable says whether retrying may help (only read when Err != nil).
	Recoverable bool
	Bytes       int64
	Started     time.Time
	Duration    time.Duration
	Checksum    Verdict
	// ExitCode is a tool's exit status (gfal2) or the errno-like code a
	// backend reported; 0 on success.
	ExitCode int
	// Mode says how a transfer moved the data: ModeStream, ModeTPC,
	// ModePresent (destination already had it), or "" (backend's own).
	Mode string
	// Code is the structured error origin ("http 404", "errno ENOENT",
	// "fts DESTINATION 17"), "" if none.
	Code string
}

// Backend carries out batches. Results are reported asynchronously through
// the function given to Run, once per task (a task may be reported again
// after a restart; the daemon's compare-and-set drops duplicates).
//
// Submit must be idempotent per batch id: on restart the daemon submits
// every batch that still has tasks in flight, with the JobID recorded
// before, and the backend must then neither lose nor repeat work (the
// native and gfal2 engines check the destination first; FTS3 polls a known
// job or resubmits with a deterministic id).
type Backend interface {
	// Name is the backend's configuration name ("native", "gfal2", "fts3").
	Name() string
	// Run executes and polls until ctx ends, calling report for every
	// finished task. report must not block for long.
	Run(ctx context.Context, report func(Result)) error
	// Submit hands b over and returns the handle to record ("" if none).
	// It returns quickly; work happens in Run.
	Submit(ctx context.Context, b Batch) (jobID string, err error)
}

// Canceller is implemented by backends that can stop submitted work.
type Canceller interface {
	Cancel(ctx context.Context, b Batch) error
}
