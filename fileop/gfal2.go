package fileop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// Gfal2Config tunes the gfal2 backend, which runs the gfal2-util command
// line tools (gfal-copy, gfal-rm) once per file.
type Gfal2Config struct {
	// Workers is the number of concurrent tool processes (default 8).
	Workers int `yaml:"workers"`
	// Timeout bounds one process (default 1h), also passed as -t.
	Timeout time.Duration `yaml:"timeout"`
	// Bin is the directory of the gfal-* tools ("" = PATH).
	Bin string `yaml:"bin"`
	// PythonBin is GFAL_PYTHONBIN (default /usr/bin/python3: the gfal-*
	// wrappers otherwise pick the first python on PATH, which may lack
	// the gfal2 module).
	PythonBin string `yaml:"python_bin"`
	// Definitions are extra -D "GROUP:KEY=VALUE" settings. BDII is always
	// disabled (it would try a network lookup for short SURLs).
	Definitions []string `yaml:"definitions"`
}

func (c *Gfal2Config) applyDefaults() {
	if c.Workers == 0 {
		c.Workers = 8
	}
	if c.Timeout == 0 {
		c.Timeout = time.Hour
	}
	if c.PythonBin == "" {
		c.PythonBin = "/usr/bin/python3"
	}
}

func (c Gfal2Config) validate() error {
	var errs []error
	if c.Workers < 1 || c.Workers > 1024 {
		errs = append(errs, fmt.Errorf("fileop.gfal2.workers: %d out of range 1..1024", c.Workers))
	}
	if c.Timeout < time.Second {
		errs = append(errs, fmt.Errorf("fileop.gfal2.timeout: %v is under 1s", c.Timeout))
	}
	for _, d := range c.Definitions {
		if !strings.Contains(d, ":") || !strings.Contains(d, "=") {
			errs = append(errs, fmt.Errorf("fileop.gfal2.definitions: %q is not GROUP:KEY=VALUE", d))
		}
	}
	return errors.Join(errs...)
}

// Gfal2 is the gfal2 backend. Each task is one gfal-copy (with -f -p and
// the adler32 checked on both ends when the inventory knows it) or one
// gfal-rm. A resumed batch is copied again (gfal-copy -f): the completion
// is still recorded once.
type Gfal2 struct {
	cfg  Gfal2Config
	log  *logrus.Entry
	pool workerPool
}

// NewGfal2 returns the gfal2 backend.
func NewGfal2(cfg Gfal2Config, log *logrus.Entry) *Gfal2 {
	cfg.applyDefaults()
	return &Gfal2{cfg: cfg, log: log, pool: newWorkerPool(cfg.Workers)}
}

// Name implements Backend.
func (g *Gfal2) Name() string { return "gfal2" }

// Submit implements Backend: the tasks join the worker queue.
func (g *Gfal2) Submit(ctx context.Context, b Batch) (string, error) { return g.pool.submit(ctx, b) }

// Run implements Backend.
func (g *Gfal2) Run(ctx context.Context, report func(Result)) error {
	return g.pool.run(ctx, g.do, report)
}

func (g *Gfal2) tool(name string) string {
	if g.cfg.Bin != "" {
		return g.cfg.Bin + "/" + name
	}
	return name
}

func (g *Gfal2) do(ctx context.Context, j job) Result {
	start := time.Now()
	r := Result{SubID: j.task.SubID, BatchID: j.batch, Started: start}
	args := []string{"-t", strconv.Itoa(int(g.cfg.Timeout / time.Second)), "-D", "BDII:ENABLED=false"}
	for _, d := range g.cfg.Definitions {
		args = append(args, "-D", d)
	}
	var name string
	if j.op == OpDeletion {
		name = "gfal-rm"
		args = append(args, j.task.Target)
	} else {
		name = "gfal-copy"
		args = append(args, "-f", "-p")
		if j.task.Adler32 != "" {
			args = append(args, "-K", "ADLER32:"+j.task.Adler32, "--checksum-mode", "both")
			r.Checksum = VerdictOK
		} else {
			r.Checksum = VerdictUnchecked
		}
		args = append(args, j.task.Source, j.task.Target)
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.tool(name), args...)
	cmd.Env = append(os.Environ(), "GFAL_PYTHONBIN="+g.cfg.PythonBin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	r.Duration = time.Since(start)
	if err == nil {
		if j.op == OpTransfer {
			r.Bytes = j.task.Size
		}
		return r
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.ExitCode = ee.ExitCode()
	}
	msg := strings.TrimSpace(out.String())
	kind, code := classifyGfal(msg)
	if j.op == OpDeletion && errors.Is(kind, driver.ErrNotFound) {
		return Result{SubID: r.SubID, BatchID: r.BatchID, Started: start, Duration: r.Duration} // already gone
	}
	if ctx.Err() != nil {
		kind = driver.ErrTimeout
	}
	if errors.Is(kind, driver.ErrChecksumMismatch) {
		r.Checksum = VerdictMismatch
	} else if j.op == OpTransfer {
		r.Checksum = VerdictUnchecked
	}
	r.Code = code
	r.Err = driver.NewError(ctx, name, j.task.Target, kind, code, fmt.Errorf("exit %d: %s", r.ExitCode, lastLines(msg, 3)))
	r.Recoverable = driver.Recoverable(r.Err)
	return r
}

// gfal2 prints "gfal-copy error: 2 (No such file or directory) - ...":
// the number is an errno, the structured code we classify by.
var gfalErrno = regexp.MustCompile(`error:\s*(\d+)\s*\(`)

// classifyGfal derives the error kind from the errno gfal2 printed, and
// only without one from the message text.
func classifyGfal(msg string) (error, string) {
	if m := gfalErrno.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		errno := syscall.Errno(n)
		if strings.Contains(strings.ToLower(msg), "checksum") && (errno == syscall.EIO || errno == syscall.EINVAL) {
			return driver.ErrChecksumMismatch, "errno " + strconv.Itoa(n)
		}
		return driver.KindFromErrno(errno), "errno " + strconv.Itoa(n)
	}
	return driver.KindFromMessage(msg), ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

var _ Backend = (*Gfal2)(nil)
