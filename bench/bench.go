// Package bench measures the system on synthetic and real inventories:
// each benchmark takes what `dynamo bench <name>` parsed and opened and
// returns the figures that command prints. It never decides what the
// system does; it times and counts the components doing it.
package bench

import (
	"errors"
	"math"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dynamo-go/dynamo/internal/policy"
)

// InputError marks a failure caused by what the caller asked for (a
// policy that does not parse, a configuration the component refuses), as
// opposed to one met while measuring: the command reports it as bad usage.
type InputError struct{ Err error }

func (e InputError) Error() string { return e.Err.Error() }
func (e InputError) Unwrap() error { return e.Err }

// IsInputError says whether err, or an error it wraps, is an InputError.
func IsInputError(err error) bool {
	var in InputError
	return errors.As(err, &in)
}

// AllProducers are the Detox input producers that need more than the
// inventory: a benchmark without those sources treats them as empty.
func AllProducers() []string {
	return []string{policy.ProducerLocks, policy.ProducerAccesses, policy.ProducerEnforcer, policy.ProducerTapeRequest,
		policy.ProducerUnhandledCopy, policy.ProducerProtectedSite, policy.ProducerCatalog, policy.ProducerRelease, policy.ProducerDemand}
}

// startCPUProfile profiles the process's CPU into path until the returned
// stop is called; an empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// startTrace writes a runtime execution trace into path until the
// returned stop is called; an empty path traces nothing.
func startTrace(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { trace.Stop(); f.Close() }, nil
}

// cpuSeconds is the user+system CPU time of this process so far: on a
// shared, busy machine it says more about a cycle's cost than wall time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// loadAvg is /proc/loadavg, so a figure can be read against how busy the
// machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// logLogSlope is the least-squares slope of log(y) against log(x): the
// exponent k of y ~ x^k; nil (JSON null) with fewer than two points.
func logLogSlope(x, y []float64) any {
	if len(x) < 2 {
		return nil
	}
	var sx, sy, sxx, sxy float64
	n := float64(len(x))
	for i := range x {
		lx, ly := math.Log(x[i]), math.Log(math.Max(y[i], 1e-9))
		sx += lx
		sy += ly
		sxx += lx * lx
		sxy += lx * ly
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

func minOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs[1:] {
		m = min(m, x)
	}
	return m
}

// procStatusBytes reads a "kB" field of /proc/self/status (VmRSS, VmHWM).
func procStatusBytes(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
