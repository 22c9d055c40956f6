package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/db"
)

// Store is the in-memory inventory backed by the database. One writer at a
// time (Write serializes callers); any number of readers on snapshots.
type Store struct {
	db  *db.DB
	log *logrus.Entry

	writeMu sync.Mutex // held for a whole Write: one writer at a time

	gateMu sync.Mutex
	gate   Writer // set by Seal: every Write goes through it

	mu       sync.Mutex // guards w while it is applied to or frozen
	w        *state
	last     *Snapshot // reused while nothing was written since
	names    *names
	nextFile FileID

	memoryOnly bool // made by a Builder: nothing backs it, writes are refused
}

// PartitionDef defines a partition: a leaf partition by a condition on
// block replicas, a super-partition by the names of its sub-partitions.
// Conditions come from the policy language (see internal/policy); the
// inventory only needs a predicate over ReplicaFacts.
type PartitionDef struct {
	Name  string
	Match func(*ReplicaFacts) bool
	Subs  []string
}

// DefaultPartitions is Dynamo's core default: one partition holding every
// replica that has an owner.
func DefaultPartitions() []PartitionDef {
	return []PartitionDef{{Name: "Default", Match: func(f *ReplicaFacts) bool { return f.GroupName != "" }}}
}

// ErrStale means another writer has committed changes this store has not
// applied: call CatchUp before writing again.
var ErrStale = errors.New("another writer is active: this inventory is behind the change log")

// WriteResult says what a write changed.
type WriteResult struct {
	Updates  int    // number of updates applied
	FirstSeq uint64 // change-log sequence of the first, 0 if none
	LastSeq  uint64
}

// Snapshot returns a consistent read-only view of the current state.
func (s *Store) Snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = &Snapshot{st: s.w.freeze(), n: s.names}
	}
	return s.last
}

// Seq returns the sequence number of the last applied change.
func (s *Store) Seq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.seq
}

// DB returns the database the store persists to.
func (s *Store) DB() *db.DB { return s.db }

// Write runs fn to build a list of updates and then makes them durable and
// visible: one database transaction writes every update and its change-log
// row; only after it commits are the updates applied in memory. If fn or
// the transaction fails, neither the database nor memory changes.
// Functions registered with Txn.Exec run in the same transaction. Writes
// are serialized; fn sees the latest state through the Txn.
//
// at is the time recorded with the changes (callers pass it so that the
// store never reads the clock itself).
//
// Once the store is sealed (Seal), Write goes through the writer given to
// Seal, which decides whether this process may write at all.
func (s *Store) Write(ctx context.Context, at time.Time, fn func(*Txn) error) (WriteResult, error) {
	if s.memoryOnly {
		return WriteResult{}, ErrBuiltInMemory
	}
	if g := s.writer(); g != nil {
		return g.Write(ctx, at, fn)
	}
	return s.write(ctx, at, fn)
}

func (s *Store) write(ctx context.Context, at time.Time, fn func(*Txn) error) (WriteResult, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	t := newTxn(s.w, s.names, at, s.nextFile)
	if err := fn(t); err != nil {
		return WriteResult{}, err
	}
	if len(t.updates) == 0 && len(t.execs) == 0 {
		return WriteResult{}, nil
	}
	first := s.w.seq + 1
	bodies, err := encodeBodies(t.updates)
	if err != nil {
		return WriteResult{}, err
	}
	err = s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		p := newPersister(ctx, tx, s.db, s.w, s.nextFile, len(t.updates), t.progress)
		defer p.close()
		if err := p.changeLog(first, at.Unix(), t.updates, bodies); err != nil {
			return err
		}
		if err := p.persistAll(t.updates); err != nil {
			return err
		}
		for _, fn := range t.execs {
			if err := fn(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return WriteResult{}, err
	}
	if len(t.updates) == 0 {
		return WriteResult{}, nil
	}
	s.apply(t.updates, first)
	if t.nextFile > s.nextFile {
		s.nextFile = t.nextFile
	}
	return WriteResult{Updates: len(t.updates), FirstSeq: first, LastSeq: first + uint64(len(t.updates)) - 1}, nil
}

// encodeBodies encodes the change-log body of every update. A large write
// spends a noticeable part of its time here, and the updates are
// independent: encode on every core.
func encodeBodies(us []Update) ([][]byte, error) {
	bodies := make([][]byte, len(us))
	workers := min(runtime.GOMAXPROCS(0), 1+len(us)/1000)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(us); i += workers {
				b, err := json.Marshal(us[i])
				if err != nil {
					errs[w] = fmt.Errorf("encode %s: %w", us[i].Kind(), err)
					return
				}
				bodies[i] = b
			}
		}()
	}
	wg.Wait()
	return bodies, errors.Join(errs...)
}

func (s *Store) apply(us []Update, first uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range us {
		u.apply(s.w, s.names)
	}
	s.w.seq = first + uint64(len(us)) - 1
	s.last = nil
}

// CatchUp applies the changes another writer committed after this store's
// sequence number, read from the change log. A server that takes over the
// writer lease calls it before writing, so nothing is missed or applied
// twice (updates are applied in seq order, each exactly once).
func (s *Store) CatchUp(ctx context.Context) (int, error) {
	if s.memoryOnly {
		return 0, ErrBuiltInMemory
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	rows, err := s.db.QueryxContext(ctx, "SELECT seq, kind, body FROM inventory_changes WHERE seq > ? ORDER BY seq", s.Seq())
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var seq uint64
		var kind, body string
		if err := rows.Scan(&seq, &kind, &body); err != nil {
			return n, err
		}
		u, err := DecodeUpdate(kind, []byte(body))
		if err != nil {
			return n, fmt.Errorf("change %d: %w", seq, err)
		}
		if seq != s.Seq()+1 {
			return n, fmt.Errorf("change log has a gap before seq %d (at %d)", seq, s.Seq())
		}
		s.apply([]Update{u}, seq)
		if fu, ok := u.(UpsertFiles); ok {
			for _, f := range fu.Files {
				if f.ID >= s.nextFile {
					s.nextFile = f.ID + 1
				}
			}
		}
		n++
	}
	return n, rows.Err()
}

// SetPartitions replaces the partition definitions: it creates database
// rows for new partition names (through a Write) and recomputes every
// replica's membership and the occupancy figures.
func (s *Store) SetPartitions(ctx context.Context, at time.Time, defs []PartitionDef) error {
	if len(defs) > MaxPartitions {
		return fmt.Errorf("%d partitions defined; at most %d are supported", len(defs), MaxPartitions)
	}
	leaf := map[string]bool{}
	for _, d := range defs {
		if err := CheckPartitionName(d.Name); err != nil {
			return err
		}
		if leaf[d.Name] {
			return fmt.Errorf("partition %q defined twice", d.Name)
		}
		leaf[d.Name] = len(d.Subs) == 0
		if len(d.Subs) == 0 && d.Match == nil {
			return fmt.Errorf("partition %q has neither a condition nor sub-partitions", d.Name)
		}
	}
	for _, d := range defs {
		for _, sub := range d.Subs {
			isLeaf, ok := leaf[sub]
			if !ok {
				return fmt.Errorf("partition %q: unknown sub-partition %q", d.Name, sub)
			}
			if !isLeaf {
				return fmt.Errorf("partition %q: sub-partition %q is itself a super-partition", d.Name, sub)
			}
		}
	}
	addMissing := func(t *Txn) error {
		for _, d := range defs {
			if _, ok := t.PartitionID(d.Name); !ok {
				if err := t.Add(UpsertPartition{Partition{ID: t.NewPartitionID(), Name: d.Name}}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	_, err := s.Write(ctx, at, addMissing)
	if errors.Is(err, ErrStale) {
		// Another server created partitions (or anything else) at the same
		// time, typically two servers starting on an empty database:
		// replay its changes and look again.
		if _, err = s.CatchUp(ctx); err == nil {
			_, err = s.Write(ctx, at, addMissing)
		}
	}
	if err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.w
	st.maskMemo.valid = false
	for id := range st.parts {
		st.parts[id].match, st.parts[id].subs = nil, nil
	}
	for _, d := range defs {
		id, _ := s.names.partition(d.Name)
		p := &st.parts[id]
		p.match = d.Match
		for _, sub := range d.Subs {
			sid, _ := s.names.partition(sub)
			p.subs = append(p.subs, sid)
		}
	}
	// Recompute from scratch: zero the accounting, then remask and re-add.
	for id := range st.sites {
		if !st.sites[id].exists {
			continue
		}
		r := st.siteAcct(SiteID(id))
		clear(r.phys)
		clear(r.proj)
		r.pending = 0
	}
	for i := int32(1); i < st.replicas.len(); i++ {
		if st.replicas.at(i).flags&flagExists == 0 {
			continue
		}
		r := st.replicas.mut(i, st.gen)
		r.mask = st.memberMask(r)
		st.account(r, +1)
	}
	s.last = nil
	return nil
}
