package srm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/sirupsen/logrus"
)

// Request types as stored in srm_requests.rtype.
const (
	typeGet = "PTG"
	typePut = "PTP"
	typeBoL = "BOL"
)

// ErrQueueFull is returned by submit when MaxQueued requests are waiting.
var ErrQueueFull = errors.New("request queue is full")

// request is a row of srm_requests.
type request struct {
	ID          int64  `db:"id"`
	Token       string `db:"token"`
	Type        string `db:"rtype"`
	Status      int    `db:"status"`
	Explanation string `db:"explanation"`
	DN          string `db:"client_dn"`
	FQANs       string `db:"fqans"`
	UserDesc    string `db:"user_desc"`
	Protocols   string `db:"protocols"`
	Overwrite   string `db:"overwrite"`
	SpaceToken  string `db:"space_token"`
	PinLifetime int64  `db:"pin_lifetime"`
	Created     int64  `db:"created"`
	Deadline    int64  `db:"deadline"`
	NFiles      int    `db:"n_files"`
}

// file is a row of srm_files.
type file struct {
	ID           int64  `db:"id"`
	RequestID    int64  `db:"request_id"`
	Idx          int    `db:"idx"`
	SURL         string `db:"surl"`
	StFN         string `db:"stfn"`
	Status       int    `db:"status"`
	Explanation  string `db:"explanation"`
	ExpectedSize int64  `db:"expected_size"`
	FileSize     int64  `db:"file_size"`
	TURL         string `db:"turl"`
	PinExpires   int64  `db:"pin_expires"`
}

const reqCols = "id, token, rtype, status, explanation, client_dn, fqans, user_desc, protocols, overwrite, space_token, pin_lifetime, created, deadline, n_files"
const fileCols = "id, request_id, idx, surl, stfn, status, explanation, expected_size, file_size, turl, pin_expires"

// engine runs asynchronous requests StoRM's way: the SOAP handlers insert
// QUEUED requests; a picker moves a bounded batch to INPROGRESS at each
// interval and hands them to per-type bounded worker pools; StatusOf* reads
// the database; agents expire pins and puts and purge old requests.
type engine struct {
	s      *Server
	log    *logrus.Entry
	cfg    EngineConfig
	nextID atomic.Int64
	queued atomic.Int64 // QUEUED requests not yet picked
	// recalls counts tape recalls from their start until their outcome
	// is saved: a recall outlives the request that started it (an abort
	// does not stop the tape), so this is how far the SE's work reaches.
	recalls atomic.Int64
	pools   map[string]chan int64
	wg      sync.WaitGroup
	kick    chan struct{}
	// runCtx is Run's context: work that outlives one SOAP call (recalls
	// started by an immediate request) is bound to it, not to the call.
	runCtx context.Context

	mu   sync.RWMutex
	puts map[string]*upload // stfn -> the upload holding it (SPACE_AVAILABLE)
}

func newEngine(s *Server) *engine {
	e := &engine{s: s, log: s.log.WithField("part", "engine"), cfg: s.cfg.Engine,
		puts: map[string]*upload{}, kick: make(chan struct{}, 1)}
	e.pools = map[string]chan int64{
		typeGet: make(chan int64, e.cfg.QueueSize),
		typePut: make(chan int64, e.cfg.QueueSize),
		typeBoL: make(chan int64, e.cfg.QueueSize),
	}
	return e
}

// loadState reads the engine state from the database: id counters, requests a
// dead process left INPROGRESS (requeued), the busy-upload table. It must
// complete before any SOAP call is served.
func (e *engine) loadState(ctx context.Context) error {
	d := e.s.db
	var maxReq, maxFile int64
	if err := d.GetContext(ctx, &maxReq, "SELECT COALESCE(MAX(id), 0) FROM srm_requests"); err != nil {
		return fmt.Errorf("srm engine: %w", err)
	}
	if err := d.GetContext(ctx, &maxFile, "SELECT COALESCE(MAX(id), 0) FROM srm_files"); err != nil {
		return fmt.Errorf("srm engine: %w", err)
	}
	e.nextID.Store(max(maxReq, maxFile))
	// Requests a previous process had picked but not finished go back to
	// the queue: their workers died with it.
	if _, err := d.ExecContext(ctx, "UPDATE srm_requests SET status = ? WHERE status = ?", SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS); err != nil {
		return fmt.Errorf("srm engine: requeue: %w", err)
	}
	if _, err := d.ExecContext(ctx, "UPDATE srm_files SET status = ? WHERE status = ?", SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS); err != nil {
		return fmt.Errorf("srm engine: requeue: %w", err)
	}
	var n int64
	if err := d.GetContext(ctx, &n, "SELECT COUNT(*) FROM srm_requests WHERE status = ?", SRM_REQUEST_QUEUED); err != nil {
		return fmt.Errorf("srm engine: %w", err)
	}
	e.queued.Store(n)
	var busy []struct {
		StFN     string `db:"stfn"`
		Token    string `db:"token"`
		Space    string `db:"space_token"`
		Expected int64  `db:"expected_size"`
	}
	if err := d.SelectContext(ctx, &busy, `SELECT f.stfn, r.token, r.space_token, f.expected_size FROM srm_files f JOIN srm_requests r ON r.id = f.request_id
		WHERE f.status = ? AND r.rtype = ?`, SRM_SPACE_AVAILABLE, typePut); err != nil {
		return fmt.Errorf("srm engine: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range busy {
		u := &upload{token: b.Token}
		if b.Space != "" && e.s.ns.AreaByToken(b.Space) == nil {
			u.space = b.Space
		}
		// Uploads granted before the restart keep their reservation, even
		// over the limit: they were admitted.
		if loc, err := e.s.ns.Resolve(b.StFN); err == nil {
			u.area = loc.Area
			if u.space == "" {
				u.reserved = putReservation(loc.Area, b.Expected)
				loc.Area.pending.Add(u.reserved)
			}
		}
		e.puts[b.StFN] = u
	}
	return nil
}

// heldStages returns the last elements of the staging names of the uploads
// held, so a start-up sweep keeps their data.
func (e *engine) heldStages() map[string]bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := map[string]bool{}
	for stfn, u := range e.puts {
		out[path.Base(stageName(stfn, u.token))] = true
	}
	return out
}

// run starts the worker pools and runs the picker and the agents until ctx
// ends. loadState must have succeeded first.
func (e *engine) run(ctx context.Context) error {
	workers := map[string]int{typeGet: e.cfg.GetWorkers, typePut: e.cfg.PutWorkers, typeBoL: e.cfg.BoLWorkers}
	for t, ch := range e.pools {
		for i := 0; i < workers[t]; i++ {
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				for {
					select {
					case <-ctx.Done():
						return
					case id := <-ch:
						e.process(ctx, id)
					}
				}
			}()
		}
	}
	e.wg.Add(1)
	go func() { defer e.wg.Done(); e.agents(ctx) }()

	tick := time.NewTicker(e.cfg.PickInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-e.kick:
		}
		if err := e.pick(ctx); err != nil && ctx.Err() == nil {
			e.log.WithError(err).Warn("picking requests failed")
		}
	}
}

// wait blocks until the workers and agents have stopped.
func (e *engine) wait() { e.wg.Wait() }

// pick moves up to PickBatch QUEUED requests per type, bounded by the free
// room in that type's pool queue, to INPROGRESS and hands them to workers.
func (e *engine) pick(ctx context.Context) error {
	// Resynchronize the admission counter with the database: aborts and
	// timeouts of queued requests change it behind submit's back. Submits
	// racing with this read are corrected at the next tick.
	var waiting int64
	if err := e.s.db.GetContext(ctx, &waiting, "SELECT COUNT(*) FROM srm_requests WHERE status = ?", SRM_REQUEST_QUEUED); err != nil {
		return err
	}
	e.queued.Store(waiting)
	for t, ch := range e.pools {
		room := min(cap(ch)-len(ch), e.cfg.PickBatch)
		if room <= 0 {
			continue
		}
		var ids []int64
		err := e.s.db.InTx(ctx, func(tx *sqlx.Tx) error {
			ids = ids[:0]
			if err := tx.SelectContext(ctx, &ids, "SELECT id FROM srm_requests WHERE status = ? AND rtype = ? ORDER BY id LIMIT ?",
				SRM_REQUEST_QUEUED, t, room); err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil
			}
			q, args, err := sqlx.In("UPDATE srm_requests SET status = ? WHERE status = ? AND id IN (?)", SRM_REQUEST_INPROGRESS, SRM_REQUEST_QUEUED, ids)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, q, args...)
			return err
		})
		if err != nil {
			return err
		}
		e.queued.Add(-int64(len(ids)))
		for _, id := range ids {
			ch <- id // room was reserved above; only the picker sends
		}
	}
	return nil
}

// newToken returns a request token: the type and 16 random hex digits.
func newToken(t string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(t) + "-" + hex.EncodeToString(b[:])
}

// submit writes a request and its files in one transaction. With
// immediate it is inserted INPROGRESS and processed by the caller instead of
// the picker. It fails with ErrQueueFull beyond MaxQueued waiting requests.
func (e *engine) submit(ctx context.Context, r *request, files []*file, immediate bool) error {
	if !immediate {
		if e.queued.Add(1) > int64(e.cfg.MaxQueued) {
			e.queued.Add(-1)
			return fmt.Errorf("%w: %d requests waiting (engine.max_queued)", ErrQueueFull, e.cfg.MaxQueued)
		}
	}
	r.ID = e.nextID.Add(1)
	r.Token = newToken(r.Type)
	r.Status = int(SRM_REQUEST_QUEUED)
	if immediate {
		r.Status = int(SRM_REQUEST_INPROGRESS)
	}
	r.NFiles = len(files)
	for i, f := range files {
		f.ID = e.nextID.Add(1)
		f.RequestID = r.ID
		f.Idx = i
		if f.Status == 0 {
			f.Status = int(SRM_REQUEST_QUEUED)
		}
	}
	err := e.s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.NamedExecContext(ctx, "INSERT INTO srm_requests ("+reqCols+") VALUES (:"+strings.ReplaceAll(reqCols, ", ", ", :")+")", r); err != nil {
			return err
		}
		// Multi-row inserts in chunks keep a 1000-file request to a few
		// statements on both dialects.
		for i := 0; i < len(files); i += 200 {
			chunk := files[i:min(i+200, len(files))]
			if _, err := tx.NamedExecContext(ctx, "INSERT INTO srm_files ("+fileCols+") VALUES (:"+strings.ReplaceAll(fileCols, ", ", ", :")+")", chunk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if !immediate {
			e.queued.Add(-1)
		}
		return fmt.Errorf("storing request: %w", err)
	}
	if !immediate && len(e.kick) == 0 && e.queued.Load() >= int64(e.cfg.PickBatch) {
		select { // a full batch is waiting: do not wait for the tick
		case e.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

func (e *engine) load(ctx context.Context, q string, arg any) (*request, []*file, error) {
	var r request
	if err := e.s.db.GetContext(ctx, &r, "SELECT "+reqCols+" FROM srm_requests WHERE "+q, arg); err != nil {
		return nil, nil, err
	}
	var fs []*file
	if err := e.s.db.SelectContext(ctx, &fs, "SELECT "+fileCols+" FROM srm_files WHERE request_id = ? ORDER BY idx", r.ID); err != nil {
		return nil, nil, err
	}
	return &r, fs, nil
}

// byToken loads a request and its files; nil without error when unknown.
func (e *engine) byToken(ctx context.Context, token string) (*request, []*file, error) {
	r, fs, err := e.load(ctx, "token = ?", token)
	if err != nil && isNoRows(err) {
		return nil, nil, nil
	}
	return r, fs, err
}

// saveFiles writes the given files' state and the request's status. Only
// files still in fromStatus are updated (an abort in between wins).
func (e *engine) saveFiles(ctx context.Context, r *request, files []*file, reqFrom []StatusCode, fromStatus ...StatusCode) error {
	return e.s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		for _, f := range files {
			q, args, err := sqlx.In(`UPDATE srm_files SET status = ?, explanation = ?, file_size = ?, turl = ?, pin_expires = ?
				WHERE id = ? AND status IN (?)`, f.Status, trunc(f.Explanation, 1024), f.FileSize, f.TURL, f.PinExpires, f.ID, fromStatus)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		if r == nil {
			return nil
		}
		q, args, err := sqlx.In("UPDATE srm_requests SET status = ?, explanation = ? WHERE id = ? AND status IN (?)",
			r.Status, trunc(r.Explanation, 1024), r.ID, reqFrom)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, q, args...)
		return err
	})
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// putBusy reports whether an upload holds stfn (SPACE_AVAILABLE).
func (e *engine) putBusy(_ context.Context, stfn string) bool {
	e.mu.RLock()
	_, ok := e.puts[stfn]
	e.mu.RUnlock()
	return ok
}

// holdPut marks stfn as held by u; false if another upload holds it.
func (e *engine) holdPut(stfn string, u *upload) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.puts[stfn]; ok {
		return false
	}
	e.puts[stfn] = u
	return true
}

// heldBy returns the upload holding stfn, or nil.
func (e *engine) heldBy(stfn string) *upload {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.puts[stfn]
}

// growReservation lets the upload holding stfn write n more bytes than it
// reserved, if its area has them free (uploads of unknown size without a
// configured default reserve when their data arrives).
func (e *engine) growReservation(stfn, token string, n int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	u := e.puts[stfn]
	if u == nil || u.token != token || u.area == nil || !u.area.reserve(n) {
		return false
	}
	u.reserved += n
	return true
}

// releasePut frees stfn if token holds it, giving back its reservation.
func (e *engine) releasePut(stfn, token string) {
	e.mu.Lock()
	u := e.puts[stfn]
	if u != nil && u.token == token {
		delete(e.puts, stfn)
		if u.area != nil {
			u.area.unreserve(u.reserved)
		}
	}
	e.mu.Unlock()
}

// pinned reports whether a get or bring-online pin holds stfn.
func (e *engine) pinned(ctx context.Context, stfn string) bool {
	var n int
	err := e.s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM srm_files f JOIN srm_requests r ON r.id = f.request_id
		WHERE f.stfn = ? AND ((r.rtype = ? AND f.status = ?) OR (r.rtype = ? AND f.status = ?))`,
		stfn, typeGet, SRM_FILE_PINNED, typeBoL, SRM_SUCCESS)
	return err != nil || n > 0 // on error, assume pinned: never purge blindly
}
