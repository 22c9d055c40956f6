package fileop

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// NativeConfig tunes the embedded engine.
type NativeConfig struct {
	// Workers is the number of concurrent file operations (default 16).
	Workers int `yaml:"workers"`
	// KeepExisting refuses to replace a destination file that exists with
	// other content (the transfer fails irrecoverably with ErrExists and is
	// held). By default such a file is replaced: the inventory says what
	// belongs there, and a corrupt copy found by the consistency checker
	// must be overwritten. A destination that already has the right size
	// and checksum is always taken as done (that is how a resumed batch
	// avoids repeating work).
	KeepExisting bool `yaml:"keep_existing"`
	// TPC lets the destination pull the file itself (WLCG HTTP third-party
	// copy) when both ends are http(s)/dav(s) and the destination driver is
	// a driver.ThirdPartyCopier; a destination that refuses falls back to
	// streaming and is not asked again. Off by default: plain mod_dav does
	// not implement it.
	TPC bool `yaml:"tpc"`
	// Timeout bounds one operation: Timeout plus Size / MinRate.
	Timeout time.Duration `yaml:"timeout"`
	// MinRate in bytes per second stretches the timeout for large files
	// (default 1 MiB/s).
	MinRate int64 `yaml:"min_rate"`
}

func (c *NativeConfig) applyDefaults() {
	if c.Workers == 0 {
		c.Workers = 16
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.MinRate == 0 {
		c.MinRate = 1 << 20
	}
}

func (c NativeConfig) validate() error {
	var errs []error
	if c.Workers < 1 || c.Workers > 4096 {
		errs = append(errs, fmt.Errorf("native.workers: %d out of range 1..4096", c.Workers))
	}
	if c.Timeout < time.Second {
		errs = append(errs, fmt.Errorf("native.timeout: %v is under 1s", c.Timeout))
	}
	if c.MinRate < 1 {
		errs = append(errs, fmt.Errorf("native.min_rate: %d must be positive", c.MinRate))
	}
	return errors.Join(errs...)
}

// Native is the embedded backend: a pool of goroutines moving bytes through
// the storage drivers, adler32 computed while streaming.
type Native struct {
	cfg  NativeConfig
	opts driver.Options
	log  *logrus.Entry
	pool workerPool

	mu      sync.Mutex
	drivers map[string]driver.Driver
	noTPC   map[string]bool
}

// NewNative returns the native backend; opts are the drivers' credentials.
func NewNative(cfg NativeConfig, opts driver.Options, log *logrus.Entry) *Native {
	cfg.applyDefaults()
	return &Native{cfg: cfg, opts: opts, log: log, pool: newWorkerPool(cfg.Workers),
		drivers: map[string]driver.Driver{}, noTPC: map[string]bool{}}
}

// Name implements Backend.
func (n *Native) Name() string { return "native" }

// Submit implements Backend: the tasks join the worker queue.
func (n *Native) Submit(ctx context.Context, b Batch) (string, error) { return n.pool.submit(ctx, b) }

// Run implements Backend.
func (n *Native) Run(ctx context.Context, report func(Result)) error {
	return n.pool.run(ctx, n.do, report)
}

func (n *Native) do(ctx context.Context, j job) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout+time.Duration(j.task.Size/n.cfg.MinRate)*time.Second)
	defer cancel()
	var r Result
	var err error
	if j.op == OpDeletion {
		err = n.remove(ctx, j.task.Target)
		r.Checksum = ""
	} else {
		r, err = n.transfer(ctx, j.task)
	}
	r.SubID, r.BatchID, r.Started, r.Duration = j.task.SubID, j.batch, start, time.Since(start)
	if err != nil {
		r.Err, r.Recoverable = err, driver.Recoverable(err)
		var de *driver.Error
		if errors.As(err, &de) {
			r.Code = de.Code
		}
		if errors.Is(err, driver.ErrChecksumMismatch) {
			r.Checksum = VerdictMismatch
		}
	}
	return r
}

// open returns the (cached) driver for pfn's endpoint and the path in it.
func (n *Native) open(ctx context.Context, pfn string) (driver.Driver, string, error) {
	root, rel, err := driver.SplitURL(pfn)
	if err != nil {
		return nil, "", &driver.Error{Op: "open", URL: pfn, Kind: driver.ErrInvalidPath, Err: err}
	}
	n.mu.Lock()
	d, ok := n.drivers[root]
	n.mu.Unlock()
	if ok {
		return d, rel, nil
	}
	d, err = driver.Open(ctx, root, n.opts)
	if err != nil {
		return nil, "", err
	}
	n.mu.Lock()
	if old, ok := n.drivers[root]; ok {
		d = old
	} else {
		n.drivers[root] = d
	}
	n.mu.Unlock()
	return d, rel, nil
}

func (n *Native) remove(ctx context.Context, pfn string) error {
	d, p, err := n.open(ctx, pfn)
	if err != nil {
		return err
	}
	err = d.Remove(ctx, p)
	if errors.Is(err, driver.ErrNotFound) {
		return nil // already gone: the goal of a deletion is met
	}
	return err
}

// transfer copies one file. The destination is checked first: a file with
// the expected size and checksum is success without copying (a resumed
// batch, or a copy made by someone else).
func (n *Native) transfer(ctx context.Context, t Task) (Result, error) {
	r := Result{Checksum: VerdictUnchecked}
	dst, dp, err := n.open(ctx, t.Target)
	if err != nil {
		return r, err
	}
	src, sp, err := n.open(ctx, t.Source)
	if err != nil {
		return r, err
	}
	if done, err := n.alreadyThere(ctx, dst, dp, t); err != nil {
		return r, err
	} else if done {
		r.Checksum, r.Mode = VerdictOK, ModePresent
		return r, nil
	}
	if n.cfg.TPC && n.tpcCandidate(t, dst) {
		// The pulling server writes the file but, unlike Put, does not
		// create its parent (XrdHttp answers 400 "no such file").
		if dir := path.Dir(dp); dir != "." && dir != "/" {
			if err := dst.Mkdir(ctx, dir); err != nil {
				return r, err
			}
		}
		err := dst.(driver.ThirdPartyCopier).CopyFrom(ctx, dp, t.Source, driver.TPCOptions{OnProgress: func(b int64) { r.Bytes = b }})
		switch {
		case err == nil:
			r.Bytes, r.Mode = t.Size, ModeTPC
			return n.verifyDest(ctx, dst, dp, t, r)
		case errors.Is(err, driver.ErrUnsupported) || errors.Is(err, driver.ErrInvalid):
			n.mu.Lock()
			n.noTPC[dst.String()] = true
			n.mu.Unlock()
			n.log.WithError(err).WithField("destination", dst.String()).Info("third-party copy refused; streaming from now on")
		default:
			return r, err
		}
	}
	cr, err := driver.Copy(ctx, dst, dp, src, sp, t.Size, t.Adler32)
	r.Bytes, r.Mode = cr.Bytes, ModeStream
	if err != nil {
		return r, err
	}
	if t.Adler32 != "" {
		r.Checksum = VerdictOK
	}
	return n.verifyDest(ctx, dst, dp, t, r)
}

// verifyDest compares the destination's own checksum, when it offers one,
// with the expected (or streamed) value.
func (n *Native) verifyDest(ctx context.Context, dst driver.Driver, dp string, t Task, r Result) (Result, error) {
	cs, ok := dst.(driver.Checksummer)
	if !ok || t.Adler32 == "" {
		return r, nil
	}
	got, err := cs.Checksum(ctx, dp, driver.AlgoAdler32)
	if errors.Is(err, driver.ErrUnsupported) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	if got != t.Adler32 {
		_ = dst.Remove(ctx, dp)
		r.Checksum = VerdictMismatch
		return r, driver.NewError(ctx, "verify", t.Target, driver.ErrChecksumMismatch, "",
			fmt.Errorf("destination reports adler32 %s, inventory says %s", got, t.Adler32))
	}
	r.Checksum = VerdictOK
	return r, nil
}

func (n *Native) alreadyThere(ctx context.Context, dst driver.Driver, dp string, t Task) (bool, error) {
	e, err := dst.Stat(ctx, dp)
	if errors.Is(err, driver.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if e.IsDir {
		return false, driver.NewError(ctx, "stat", t.Target, driver.ErrIsDir, "", nil)
	}
	same := e.Size == t.Size
	if same && t.Adler32 != "" {
		if cs, ok := dst.(driver.Checksummer); ok {
			sum, err := cs.Checksum(ctx, dp, driver.AlgoAdler32)
			same = err == nil && sum == t.Adler32
		} else {
			same = false // cannot prove it: copy again
		}
	}
	if same {
		return true, nil
	}
	if n.cfg.KeepExisting {
		return false, driver.NewError(ctx, "transfer", t.Target, driver.ErrExists, "", errors.New("destination exists with other content and overwrite is off"))
	}
	return false, nil
}

func (n *Native) tpcCandidate(t Task, dst driver.Driver) bool {
	if _, ok := dst.(driver.ThirdPartyCopier); !ok {
		return false
	}
	n.mu.Lock()
	off := n.noTPC[dst.String()]
	n.mu.Unlock()
	return !off && isHTTP(t.Source) && isHTTP(t.Target)
}

func isHTTP(u string) bool {
	for _, p := range []string{"https://", "http://", "davs://", "dav://"} {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

var _ Backend = (*Native)(nil)
