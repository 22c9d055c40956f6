package consistency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// ErrCheckpointMismatch: the checkpoint in the work directory belongs to a
// listing of other paths and cannot be resumed.
var ErrCheckpointMismatch = errors.New("checkpoint is for a different listing")

// ListOptions tune a site listing.
type ListOptions struct {
	// Paths are the directories to list (LFN paths below the driver root).
	Paths []string
	// Concurrency is the number of directories listed at once (default 4).
	Concurrency int
	// Retries is how often a failed directory listing is retried (default 3).
	Retries int
	// RetryWait is the wait before the first retry, doubled each time
	// (default 2s).
	RetryWait time.Duration
	// Checksums asks the driver (if it is a driver.Checksummer) for each
	// file's adler32: one extra request per file.
	Checksums bool
	// SpoolBudget is the memory for buffered records before a sorted run is
	// written (default 64 MiB).
	SpoolBudget int
	// DirSpill is the number of entries of one directory held in memory
	// before they are written to a sorted run of their own (default
	// 200,000): memory stays bounded however large a directory is.
	DirSpill int
	// CheckpointEvery is how often progress is saved (default 30s).
	CheckpointEvery time.Duration
	// Progress, if set, is called with the progress at every checkpoint and
	// at the end.
	Progress func(ListProgress)
	// Log receives progress and retries; nil discards.
	Log *logrus.Entry
}

func (o *ListOptions) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Retries < 0 {
		o.Retries = 0
	} else if o.Retries == 0 {
		o.Retries = 3
	}
	if o.RetryWait <= 0 {
		o.RetryWait = 2 * time.Second
	}
	if o.DirSpill <= 0 {
		o.DirSpill = 200_000
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 30 * time.Second
	}
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(discardWriter{})
		o.Log = logrus.NewEntry(l)
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// ListProgress is a listing's progress so far (including what a resumed
// listing had done before the restart).
type ListProgress struct {
	Dirs    int64   `json:"dirs"`
	Files   int64   `json:"files"`
	Bytes   int64   `json:"bytes"`
	Pending int     `json:"pending_dirs"`
	Rate    float64 `json:"files_per_second"` // over this process's part of the listing
	Retries int64   `json:"retries"`
}

// EmptyDir is a directory seen with no entries.
type EmptyDir struct {
	Path    string `json:"path"`
	ModTime int64  `json:"mtime"`
}

// TempFile is a driver's temporary upload seen while listing (see
// driver.IsTemporary): a transfer writing now, or the leftover of an
// interrupted one. It is neither a site file nor an orphan.
type TempFile struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime,omitempty"`
}

// ListResult is a finished listing: sorted run files to merge, the empty
// directories and the temporary uploads seen.
type ListResult struct {
	Runs      []string
	EmptyDirs []EmptyDir
	Temporary []TempFile
	Progress  ListProgress
	// Resumed is true when the listing continued from a checkpoint.
	Resumed bool
}

// checkpoint is the resumable state of a listing, rewritten atomically.
// Invariant: every file of a directory not in Pending (and below one of
// Paths) is in exactly one of Runs, and every directory in Pending still
// has to be listed, so resuming lists each directory's files once.
type checkpoint struct {
	Version   int        `json:"version"`
	Paths     []string   `json:"paths"`
	Runs      []string   `json:"runs"` // base names in the work directory
	Pending   []dirItem  `json:"pending"`
	EmptyDirs []EmptyDir `json:"empty_dirs"`
	Temporary []TempFile `json:"temporary,omitempty"`
	Dirs      int64      `json:"dirs"`
	Files     int64      `json:"files"`
	Bytes     int64      `json:"bytes"`
	Retries   int64      `json:"retries"`
	Done      bool       `json:"done"`
}

type dirItem struct {
	Path    string `json:"p"`
	ModTime int64  `json:"t,omitempty"`
	Top     bool   `json:"top,omitempty"`
}

const checkpointName = "checkpoint.json"

// List lists the files below opts.Paths through d into sorted runs in
// workDir, listing up to opts.Concurrency directories at once, retrying
// recoverable failures, and saving a checkpoint every CheckpointEvery. If
// workDir holds the checkpoint of an unfinished listing of the same paths,
// List continues it; of a finished one, List returns it unchanged. A
// configured path that does not exist is an error (its files would all be
// reported missing); a subdirectory that vanishes while listing is not.
func List(ctx context.Context, d driver.Driver, workDir string, opts ListOptions) (*ListResult, error) {
	opts.defaults()
	if len(opts.Paths) == 0 {
		return nil, errors.New("list: no paths")
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	l := &lister{d: d, dir: workDir, opts: opts, start: time.Now()}
	cp, err := readCheckpoint(workDir)
	switch {
	case err != nil:
		return nil, err
	case cp != nil && !slices.Equal(cp.Paths, opts.Paths):
		return nil, fmt.Errorf("list: %s: %w (paths %v, want %v)", workDir, ErrCheckpointMismatch, cp.Paths, opts.Paths)
	case cp != nil:
		l.cp, l.resumed = *cp, true
		l.stack = slices.Clone(cp.Pending)
	default:
		l.cp = checkpoint{Version: 1, Paths: opts.Paths}
		for i := len(opts.Paths) - 1; i >= 0; i-- {
			l.stack = append(l.stack, dirItem{Path: opts.Paths[i], Top: true})
		}
	}
	runs := make([]string, len(l.cp.Runs))
	for i, r := range l.cp.Runs {
		runs[i] = filepath.Join(workDir, r)
	}
	if err := removeStrays(workDir, l.cp.Runs); err != nil {
		return nil, err
	}
	if l.spool, err = NewSpool(workDir, opts.SpoolBudget, runs); err != nil {
		return nil, err
	}
	if !l.cp.Done {
		if l.resumed {
			opts.Log.WithField("pending_dirs", len(l.stack)).WithField("files", l.cp.Files).Info("resuming listing from checkpoint")
		}
		if err := l.run(ctx); err != nil {
			return nil, err
		}
	}
	return &ListResult{Runs: l.spool.Runs(), EmptyDirs: l.cp.EmptyDirs, Temporary: l.cp.Temporary, Progress: l.progress(), Resumed: l.resumed}, nil
}

type lister struct {
	d       driver.Driver
	dir     string
	opts    ListOptions
	start   time.Time
	resumed bool

	mu       sync.Mutex
	cond     *sync.Cond
	spool    *Spool
	cp       checkpoint
	stack    []dirItem // LIFO: depth-first keeps the frontier small
	inflight map[string]dirItem
	active   int
	err      error
	startN   int64 // files already listed when this process started
	spillSeq atomic.Int64
}

func (l *lister) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.cond = sync.NewCond(&l.mu)
	l.inflight = map[string]dirItem{}
	l.startN = l.cp.Files
	var wg sync.WaitGroup
	for range l.opts.Concurrency {
		wg.Add(1)
		go func() { defer wg.Done(); l.worker(ctx) }()
	}
	// Checkpointer: also wakes workers when ctx ends.
	stop := make(chan struct{})
	cpDone := make(chan struct{})
	go func() {
		defer close(cpDone)
		tick := time.NewTicker(l.opts.CheckpointEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				l.mu.Lock()
				l.cond.Broadcast()
				l.mu.Unlock()
				return
			case <-tick.C:
				l.mu.Lock()
				err := l.saveLocked(false)
				p := l.progressLocked()
				l.mu.Unlock()
				if err != nil {
					l.opts.Log.WithError(err).Warn("cannot save listing checkpoint")
				}
				l.report(p)
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-cpDone
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.err
	if err == nil {
		err = ctx.Err()
	}
	// Save what is done even on failure: that is what makes a restart cheap.
	serr := l.saveLocked(err == nil)
	if err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	l.report(l.progressLocked())
	return nil
}

func (l *lister) report(p ListProgress) {
	l.opts.Log.WithField("dirs", p.Dirs).WithField("files", p.Files).WithField("pending_dirs", p.Pending).
		WithField("files_per_second", int64(p.Rate)).Info("listing progress")
	if l.opts.Progress != nil {
		l.opts.Progress(p)
	}
}

func (l *lister) progressLocked() ListProgress {
	p := ListProgress{Dirs: l.cp.Dirs, Files: l.cp.Files, Bytes: l.cp.Bytes, Pending: len(l.stack) + len(l.inflight), Retries: l.cp.Retries}
	if el := time.Since(l.start).Seconds(); el > 0 {
		p.Rate = float64(l.cp.Files-l.startN) / el
	}
	return p
}

func (l *lister) progress() ListProgress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.progressLocked()
}

// saveLocked flushes the spool and writes the checkpoint (writeFileAtomic).
func (l *lister) saveLocked(done bool) error {
	if err := l.spool.Flush(); err != nil {
		return err
	}
	l.cp.Runs = l.cp.Runs[:0]
	for _, r := range l.spool.Runs() {
		l.cp.Runs = append(l.cp.Runs, filepath.Base(r))
	}
	l.cp.Pending = append(l.cp.Pending[:0], l.stack...)
	for _, it := range l.inflight {
		l.cp.Pending = append(l.cp.Pending, it)
	}
	l.cp.Done = done
	b, err := json.Marshal(&l.cp)
	if err != nil {
		return err
	}
	// Synced: the checkpoint names run files that a restart must find.
	if err := writeFileAtomic(filepath.Join(l.dir, checkpointName), b); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// removeStrays deletes what an interrupted listing wrote after its last
// checkpoint (runs the checkpoint does not name, temp files): their
// directories are pending again and will be listed anew.
func removeStrays(dir string, keep []string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		stray := strings.HasSuffix(n, ".tmp") || (strings.HasPrefix(n, "run-") && strings.HasSuffix(n, ".bin") && !slices.Contains(keep, n))
		if stray {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("list: %w", err)
			}
		}
	}
	return nil
}

func readCheckpoint(dir string) (*checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var cp checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", filepath.Join(dir, checkpointName), err)
	}
	if cp.Version != 1 {
		return nil, fmt.Errorf("checkpoint %s: unknown version %d", filepath.Join(dir, checkpointName), cp.Version)
	}
	return &cp, nil
}

func (l *lister) worker(ctx context.Context) {
	for {
		l.mu.Lock()
		for len(l.stack) == 0 && l.active > 0 && l.err == nil && ctx.Err() == nil {
			l.cond.Wait()
		}
		if len(l.stack) == 0 || l.err != nil || ctx.Err() != nil {
			l.cond.Broadcast()
			l.mu.Unlock()
			return
		}
		it := l.stack[len(l.stack)-1]
		l.stack = l.stack[:len(l.stack)-1]
		l.inflight[it.Path] = it
		l.active++
		l.mu.Unlock()

		res, retries, err := l.listDir(ctx, it)

		l.mu.Lock()
		l.active--
		l.cp.Retries += int64(retries)
		switch {
		case err != nil && errors.Is(err, driver.ErrNotFound) && !it.Top:
			// Removed since its parent was listed: nothing to see.
			delete(l.inflight, it.Path)
		case err != nil:
			if l.err == nil {
				l.err = fmt.Errorf("list %s: %w", it.Path, err)
			}
		default:
			for _, r := range res.spilled {
				if aerr := l.spool.Adopt(r); aerr != nil && l.err == nil {
					l.err = aerr
				}
			}
			if aerr := l.spool.Add(res.files...); aerr != nil && l.err == nil {
				l.err = aerr
			}
			delete(l.inflight, it.Path)
			for i := len(res.subdirs) - 1; i >= 0; i-- {
				l.stack = append(l.stack, res.subdirs[i])
			}
			l.cp.Temporary = append(l.cp.Temporary, res.temporary...)
			if res.n == 0 && len(res.subdirs) == 0 && len(res.temporary) == 0 && !it.Top {
				l.cp.EmptyDirs = append(l.cp.EmptyDirs, EmptyDir{Path: it.Path, ModTime: it.ModTime})
			}
			l.cp.Dirs++
			l.cp.Files += res.n
			l.cp.Bytes += res.bytes
		}
		l.cond.Broadcast()
		l.mu.Unlock()
	}
}

// dirResult is one directory's listing: the files still in memory, the
// sorted runs its overflow was spilled to, and its subdirectories.
type dirResult struct {
	files     []SiteFile
	spilled   []string
	subdirs   []dirItem
	temporary []TempFile
	n, bytes  int64
}

// discard removes spilled runs of a failed attempt.
func (r *dirResult) discard() {
	for _, p := range r.spilled {
		os.Remove(p)
	}
	*r = dirResult{files: r.files[:0], subdirs: r.subdirs[:0], temporary: r.temporary[:0]}
}

// listDir lists one directory completely, retrying recoverable failures
// from scratch (a partial listing is discarded, never half-kept).
func (l *lister) listDir(ctx context.Context, it dirItem) (res dirResult, retries int, err error) {
	wait := l.opts.RetryWait
	for attempt := 0; ; attempt++ {
		res.discard()
		spill := func() error {
			if l.opts.Checksums {
				if err := l.checksums(ctx, res.files); err != nil {
					return err
				}
			}
			p := filepath.Join(l.dir, fmt.Sprintf("dir-%d.tmp", l.spillSeq.Add(1)))
			res.spilled = append(res.spilled, p)
			if err := writeSortedRun(p, res.files); err != nil {
				return err
			}
			clear(res.files)
			res.files = res.files[:0]
			return nil
		}
		err = l.d.List(ctx, it.Path, func(e driver.Entry) error {
			p := path.Join(it.Path, e.Name)
			var mt int64
			if !e.ModTime.IsZero() {
				mt = e.ModTime.Unix()
			}
			if e.IsDir {
				res.subdirs = append(res.subdirs, dirItem{Path: p, ModTime: mt})
				return nil
			}
			if driver.IsTemporary(e.Name) {
				// Not a replica: compared with the inventory it would be
				// an orphan, and deleting it could cut a transfer short.
				res.temporary = append(res.temporary, TempFile{Path: p, Size: e.Size, ModTime: mt})
				return nil
			}
			res.files = append(res.files, SiteFile{LFN: p, Size: e.Size, ModTime: mt})
			res.n++
			res.bytes += e.Size
			if len(res.files) >= l.opts.DirSpill {
				return spill()
			}
			return nil
		})
		if err == nil && l.opts.Checksums {
			err = l.checksums(ctx, res.files)
		}
		if err == nil {
			return res, attempt, nil
		}
		res.discard()
		if !driver.Recoverable(err) || attempt >= l.opts.Retries || ctx.Err() != nil {
			return res, attempt, err
		}
		l.opts.Log.WithError(err).WithField("dir", it.Path).WithField("attempt", attempt+1).Warn("listing failed, retrying")
		select {
		case <-ctx.Done():
			return res, attempt, ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func (l *lister) checksums(ctx context.Context, files []SiteFile) error {
	cs, ok := l.d.(driver.Checksummer)
	if !ok {
		return nil
	}
	for i := range files {
		sum, err := cs.Checksum(ctx, files[i].LFN, driver.AlgoAdler32)
		switch {
		case errors.Is(err, driver.ErrUnsupported):
			return nil // the site does not offer checksums: compare sizes only
		case errors.Is(err, driver.ErrNotFound):
			continue // deleted since listed
		case err != nil:
			return err
		}
		files[i].Adler32 = sum
	}
	return nil
}
