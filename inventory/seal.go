package inventory

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Writer makes inventory writes: fn builds the updates of one transaction
// (see Store.Write). Components that change the inventory take a Writer.
// In `dynamo serve` there is exactly one, the scheduler's, which fences
// every write with the writer lease; a *Store is one too, for tests and
// for a process that owns its database alone.
type Writer interface {
	Write(ctx context.Context, at time.Time, fn func(*Txn) error) (WriteResult, error)
}

// ErrNotWriter means this process does not hold the inventory writer
// role: another server does (or nobody, for a moment). A write refused
// with it changed nothing; send it to the holder or retry later.
var ErrNotWriter = errors.New("not the inventory writer")

// NotWriterError is ErrNotWriter with what a caller needs to go on: who
// holds the writer role (empty: nobody, a takeover is under way) and how
// long until it is worth asking again.
type NotWriterError struct {
	Holder     string
	Address    string // the holder's REST API, when it advertises one
	RetryAfter time.Duration
}

func (e *NotWriterError) Error() string {
	switch {
	case e.Holder == "":
		return fmt.Sprintf("%v: no server holds the writer lease right now; retry in %s", ErrNotWriter, e.RetryAfter.Round(time.Second))
	case e.Address != "":
		return fmt.Sprintf("%v: the writer is %s (%s); send the write there", ErrNotWriter, e.Holder, e.Address)
	}
	return fmt.Sprintf("%v: the writer is %s; send the write there", ErrNotWriter, e.Holder)
}

func (e *NotWriterError) Is(target error) bool { return target == ErrNotWriter }

// ErrSealed is Seal called a second time.
var ErrSealed = errors.New("inventory store already sealed: its write capability was handed out")

// WriteCapability is the right to write the store's database directly.
// Seal hands it out once; its holder (the scheduler, in `dynamo serve`) is
// then the only way in, and every other write goes through the Writer
// given to Seal.
type WriteCapability struct{ s *Store }

// Write is Store.Write without the gate: for the capability's holder only.
func (c *WriteCapability) Write(ctx context.Context, at time.Time, fn func(*Txn) error) (WriteResult, error) {
	return c.s.write(ctx, at, fn)
}

// Seal routes every later Store.Write (and Inject, SetPartitions) through
// gate, and returns the capability gate needs to reach the database. It
// succeeds once: a second call is ErrSealed, so the capability has one
// holder. A test keeps Seal's callers to the scheduler.
func (s *Store) Seal(gate Writer) (*WriteCapability, error) {
	s.gateMu.Lock()
	defer s.gateMu.Unlock()
	if s.gate != nil {
		return nil, ErrSealed
	}
	if gate == nil {
		return nil, errors.New("inventory: Seal needs a writer")
	}
	s.gate = gate
	return &WriteCapability{s}, nil
}

// writer returns the gate, nil while the store is not sealed.
func (s *Store) writer() Writer {
	s.gateMu.Lock()
	defer s.gateMu.Unlock()
	return s.gate
}
