package main

import (
	"fmt"
	"net"
	"os"

	"github.com/dynamo-go/dynamo/consistency"
	"github.com/dynamo-go/dynamo/dealer"
	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/internal/logging"
	"github.com/dynamo-go/dynamo/internal/policy"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/projects"
	"github.com/dynamo-go/dynamo/scheduler"
)

// serveConfig is every input of `dynamo serve`, read and checked before
// anything has a side effect: the configuration file's sections, the
// sections given in files of their own (flags, environment), and every
// file they name, parsed.
type serveConfig struct {
	file        fileConfig
	options     serveOptions
	partitions  []inventory.PartitionDef
	scheduler   scheduler.Config
	dealer      dealer.Config
	fileop      fileop.Config
	consistency *consistency.Config // nil: no consistency checks
	projects    *projects.Config    // nil: projects off
	// enforcer holds the Dealer's enforcer rule files, parsed: Detox
	// protects what their protect: true rules cover.
	enforcer []*policy.EnforcerRules
}

// flagOrEnv returns a flag's value, else the environment variable's.
func flagOrEnv(flag, envVar string) string { return firstNonEmpty(flag, os.Getenv(envVar)) }

// loadServeConfig reads the component sections and checks every file they
// name by parsing it, the way the component will.
func loadServeConfig(e *env, o serveOptions) (serveConfig, error) {
	c := serveConfig{file: e.file, options: o, scheduler: e.file.Scheduler, fileop: e.file.Fileop,
		consistency: e.file.Consistency, projects: e.file.Projects}
	var err error
	if c.partitions, err = e.partitionDefs(); err != nil {
		return c, err
	}

	if path := flagOrEnv(o.schedulerConfig, envSchedulerConfig); path != "" {
		if c.scheduler, err = yamlconf.Load(path, scheduler.DecodeConfig); err != nil {
			return c, usageError{err}
		}
	}
	if seq := c.scheduler.Sequences; seq != "" {
		f, err := os.Open(seq)
		if err != nil {
			return c, usageError{fmt.Errorf("scheduler.sequences: %w", err)}
		}
		_, err = scheduler.ParseSequences(f, seq, nil)
		f.Close()
		if err != nil {
			return c, usageError{err}
		}
	}

	if c.dealer, err = loadDealerConfig(flagOrEnv(o.dealerConfig, envDealerConfig), e.file.Dealer); err != nil {
		return c, usageError{fmt.Errorf("dealer: %w", err)}
	}
	// New loads the rule files and compiles the placement rules.
	if _, err := dealer.New(c.dealer, dealer.Deps{}, logging.Discard()); err != nil {
		return c, usageError{fmt.Errorf("dealer: %w", err)}
	}
	// What this build wires, checked before the database is opened:
	// dealerDeps only wraps e.db, it does not use it yet.
	deps, err := dealerDeps(e)
	if err != nil {
		return c, err
	}
	deps.Transfers = fileopQueue{}
	if err := dealerInputs(c.dealer, deps); err != nil {
		return c, usageError{err}
	}
	if c.enforcer, err = enforcerRules(c.dealer.Plugins.Enforcer.RulesFiles); err != nil {
		return c, usageError{err}
	}

	if p := o.fileopConfig; p != "" {
		if c.fileop, err = yamlconf.Load(p, fileop.DecodeConfig); err != nil {
			return c, usageError{fmt.Errorf("--fileop-config: %w", err)}
		}
	}

	// Detox: every partition's policy must load with the sources serve
	// wires (a policy that needs a producer nobody feeds is refused).
	check := &detox.Runner{Config: e.file.Detox, Sources: detoxSources(nil, nil, nil, c.enforcer)}
	if err := check.Sources.FillEmpty(e.file.Detox.AssumeEmpty...); err != nil {
		return c, usageError{fmt.Errorf("detox.assume_empty: %w", err)}
	}
	for name := range e.file.Detox.Partitions {
		if _, err := check.LoadPolicy(name, ""); err != nil {
			return c, usageError{fmt.Errorf("detox partition %s: %w", name, err)}
		}
	}

	if path := flagOrEnv(o.consistencyConfig, envConsistencyConfig); path != "" {
		cc, err := loadConsistencyConfig(path)
		if err != nil {
			return c, err
		}
		c.consistency = &cc
	}
	if c.consistency != nil {
		if err := c.consistency.Validate(); err != nil {
			return c, usageError{fmt.Errorf("consistency: %w", err)}
		}
	}

	if path := flagOrEnv(o.projectsConfig, envProjectsConfig); path != "" {
		pc, err := yamlconf.Load(path, projects.DecodeConfig)
		if err != nil {
			return c, usageError{err}
		}
		c.projects = &pc
	}
	if c.projects != nil {
		pc := *c.projects
		pc.ApplyDefaults()
		if err := pc.Validate(); err != nil {
			return c, usageError{fmt.Errorf("projects: %w", err)}
		}
	}
	return c, nil
}

// serveListeners are the sockets `dynamo serve` listens on, bound before
// anything else happens so that a busy port fails without side effects.
type serveListeners struct {
	rest net.Listener
	// ses holds each storage element's SRM and data listeners, in the
	// order of storage_elements.
	ses []seListeners
}

type seListeners struct{ srm, data net.Listener }

func bindListeners(c serveConfig) (*serveListeners, error) {
	l := &serveListeners{}
	addr := c.file.Registry.Listen
	if c.options.listen != "" {
		addr = c.options.listen
	}
	var err error
	if l.rest, err = net.Listen("tcp", addr); err != nil {
		return nil, fmt.Errorf("REST API: listen %s: %w", addr, err)
	}
	for i := range c.file.StorageElements {
		se := &c.file.StorageElements[i]
		var sl seListeners
		if sl.srm, err = net.Listen("tcp", se.Listen); err != nil {
			l.close()
			return nil, fmt.Errorf("storage_elements[%d] (%s): listen %s: %w", i, se.Name, se.Listen, err)
		}
		if sl.data, err = net.Listen("tcp", se.DataListen); err != nil {
			sl.srm.Close()
			l.close()
			return nil, fmt.Errorf("storage_elements[%d] (%s): data listen %s: %w", i, se.Name, se.DataListen, err)
		}
		l.ses = append(l.ses, sl)
	}
	return l, nil
}

// close closes every listener; closing one a server already closed is
// harmless.
func (l *serveListeners) close() {
	if l == nil {
		return
	}
	if l.rest != nil {
		l.rest.Close()
	}
	for _, sl := range l.ses {
		sl.srm.Close()
		sl.data.Close()
	}
}

// notWired is the error of an enabled component whose input is missing.
func notWired(what, missing string) error {
	return fmt.Errorf("%s: %w: %s", what, errNotWired, missing)
}
