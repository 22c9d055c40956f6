package scheduler

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/dynamo-go/dynamo/inventory"
)

// Built-in application names.
const (
	AppNoop        = "noop"         // read-only: does nothing (see noopFlags)
	AppNoopWriter  = "noop-writer"  // writer: plans nothing
	AppTestCounter = "test:counter" // writer: increments a counter dataset (Config.TestApps only)
)

// CounterDataset is the dataset test:counter writes: its last_update is
// the counter, incremented by one per run.
const CounterDataset = "/DynamoTest/Counter-v1/TEST"

// ErrNoopFail is what noop returns when asked to fail.
var ErrNoopFail = errors.New("noop: failing as asked (--fail)")

// noopFlags parses the arguments the noop apps take: --sleep DURATION
// (wait, honouring cancellation) and --fail (return an error).
func noopFlags(args []string) (sleep time.Duration, fail bool, err error) {
	fs := flag.NewFlagSet("noop", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.DurationVar(&sleep, "sleep", 0, "")
	fs.BoolVar(&fail, "fail", false, "")
	if err := fs.Parse(args); err != nil {
		return 0, false, fmt.Errorf("noop arguments %q: %w (want --sleep DURATION, --fail)", args, err)
	}
	return sleep, fail, nil
}

func noopBody(ctx context.Context, args []string) error {
	sleep, fail, err := noopFlags(args)
	if err != nil {
		return err
	}
	if !sleepCtx(ctx, sleep) {
		return ctx.Err()
	}
	if fail {
		return ErrNoopFail
	}
	return nil
}

// RegisterBuiltins registers noop and noop-writer (handy for testing
// schedules and the writer slot), and test:counter when cfg.TestApps.
func (s *Scheduler) RegisterBuiltins() error {
	apps := []App{
		{Name: AppNoop, Description: "does nothing; args: --sleep DURATION, --fail",
			Run: func(ctx context.Context, e *Env) error { return noopBody(ctx, e.Args) }},
		{Name: AppNoopWriter, Description: "writer that plans no update; args: --sleep DURATION, --fail", Writer: true,
			Plan: func(ctx context.Context, e *Env) (*Plan, error) { return nil, noopBody(ctx, e.Args) }},
	}
	if s.cfg.TestApps {
		apps = append(apps, App{Name: AppTestCounter, Writer: true, Plan: counterPlan,
			Description: "test writer: increments the last_update of " + CounterDataset})
	}
	for _, a := range apps {
		if err := s.Register(a); err != nil {
			return err
		}
	}
	return nil
}

// counterPlan reads the counter from the snapshot and plans its
// increment. Because the value comes from the snapshot, a server that
// failed to replay the change log before writing would write a value
// twice; the two-server test checks that this never happens.
func counterPlan(ctx context.Context, e *Env) (*Plan, error) {
	if err := noopBody(ctx, e.Args); err != nil {
		return nil, err
	}
	ds, ok := e.Snapshot.DatasetByName(CounterDataset)
	next := int64(1)
	if ok {
		next = ds.LastUpdate + 1
	}
	return &Plan{Summary: fmt.Sprintf("counter -> %d", next), Build: func(t *inventory.Txn) error {
		id, ok := t.DatasetID(CounterDataset)
		if !ok {
			id = t.NewDatasetID()
		}
		return t.Add(inventory.UpsertDataset{Dataset: inventory.Dataset{ID: id, Name: CounterDataset,
			Status: inventory.DatasetValid, DataType: inventory.DataTest, LastUpdate: next}})
	}}, nil
}
