// Package promreg registers a component's Prometheus collectors so that two
// instances in one process (serve and a tool, two runners, tests) share
// their series: the second registration gets the collector registered
// first instead of keeping its own, which nobody would export.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Registrar registers collectors on one registry and remembers the first
// error. The zero value, or one on a nil registry, registers nothing.
type Registrar struct {
	reg prometheus.Registerer
	err error
}

// New returns a Registrar for reg (nil: collectors stay unregistered).
func New(reg prometheus.Registerer) *Registrar { return &Registrar{reg: reg} }

// Err is the first registration error other than a collector registered
// already.
func (r *Registrar) Err() error { return r.err }

// Add registers c and returns it, or returns the collector of the same
// description registered already.
func Add[C prometheus.Collector](r *Registrar, c C) C {
	if r.reg == nil {
		return c
	}
	if err := r.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if r.err == nil {
			r.err = err
		}
	}
	return c
}
