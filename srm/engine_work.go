package srm

import (
	"context"
	"errors"
	iofs "io/fs"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/gridauth"
	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// process runs one picked (or immediate) request to its next resting state.
func (e *engine) process(ctx context.Context, id int64) {
	r, files, err := e.load(ctx, "id = ?", id)
	if err != nil {
		e.log.WithError(err).WithField("request", id).Error("loading picked request")
		return
	}
	if r.Status != int(SRM_REQUEST_INPROGRESS) {
		return // aborted while queued
	}
	c := &call{ctx: ctx, id: &gridauth.Identity{DN: r.DN}, preauthorized: strings.HasPrefix(r.DN, tokenPrincipalPrefix)}
	if r.FQANs != "" {
		c.id.FQANs = strings.Split(r.FQANs, ",")
	}
	now := time.Now()
	var todo []*file
	for _, f := range files {
		if f.Status != int(SRM_REQUEST_QUEUED) {
			continue
		}
		switch r.Type {
		case typeGet:
			e.doGet(c, r, f, now)
		case typePut:
			e.doPut(c, r, f, now)
		case typeBoL:
			e.doBoL(c, r, f, now)
		}
		todo = append(todo, f)
	}
	r.Status, r.Explanation = requestStatus(r.Type, files)
	if err := e.saveFiles(ctx, r, todo, []StatusCode{SRM_REQUEST_INPROGRESS}, SRM_REQUEST_QUEUED); err != nil {
		e.log.WithError(err).WithField("token", r.Token).Error("saving processed request; requeueing it")
		// Undo what the database does not know about, then let the picker
		// retry: placeholders of granted puts go, their SURLs are freed.
		for _, f := range todo {
			if r.Type == typePut && f.Status == int(SRM_SPACE_AVAILABLE) {
				e.dropUpload(ctx, f.StFN, r.Token)
			}
		}
		if _, err := e.s.db.ExecContext(ctx, "UPDATE srm_requests SET status = ? WHERE id = ? AND status = ?",
			SRM_REQUEST_QUEUED, r.ID, SRM_REQUEST_INPROGRESS); err != nil {
			e.log.WithError(err).WithField("token", r.Token).Error("requeueing a request failed; it is retried at restart")
		}
	}
}

// okStatus is the per-file success state of each request type.
func okStatus(t string) []StatusCode {
	switch t {
	case typeGet:
		return []StatusCode{SRM_FILE_PINNED, SRM_RELEASED}
	case typePut:
		return []StatusCode{SRM_SPACE_AVAILABLE, SRM_SUCCESS}
	default:
		return []StatusCode{SRM_SUCCESS, SRM_RELEASED}
	}
}

// requestStatus derives the request status from its files.
func requestStatus(t string, files []*file) (int, string) {
	ok, aborted := 0, 0
	for _, f := range files {
		st := StatusCode(f.Status)
		if st == SRM_REQUEST_QUEUED || st == SRM_REQUEST_INPROGRESS {
			return int(SRM_REQUEST_INPROGRESS), ""
		}
		for _, o := range okStatus(t) {
			if st == o {
				ok++
			}
		}
		if st == SRM_ABORTED {
			aborted++
		}
	}
	if aborted == len(files) && aborted > 0 {
		return int(SRM_ABORTED), "request aborted"
	}
	st := summarize(ok, len(files))
	if st == SRM_FAILURE && len(files) == 1 {
		return int(st), files[0].Explanation
	}
	return int(st), ""
}

func (f *file) set(code StatusCode, expl string) {
	f.Status, f.Explanation = int(code), expl
}

// turl builds the transfer URL for the first requested protocol the area
// offers; ok is false when there is none.
func (e *engine) turl(loc *Location, protocols string) (string, bool) {
	for _, p := range strings.Split(protocols, ",") {
		if !loc.Area.Offers(p) {
			continue
		}
		switch p {
		case "https":
			addr := e.s.DataAddr()
			if addr == nil {
				continue
			}
			_, port, _ := strings.Cut(addr.String()[strings.LastIndex(addr.String(), ":"):], ":")
			return "https://" + e.s.cfg.Hostname + ":" + port + (&url.URL{Path: loc.StFN}).EscapedPath(), true
		case "file":
			// Opt-in per area: a file TURL is for clients on this host,
			// and it necessarily names the physical path.
			return "file://" + (&url.URL{Path: filepath.Join(loc.Area.Config.Root, filepath.FromSlash(loc.Name))}).EscapedPath(), true
		}
	}
	return "", false
}

func noProtocol(protocols string) string {
	return "none of the requested transfer protocols (" + protocols + ") is offered here"
}

func (e *engine) doGet(c *call, r *request, f *file, now time.Time) {
	loc, code, expl := e.s.locate(c, f.SURL, OpRead)
	if loc == nil {
		f.set(code, expl)
		return
	}
	if e.putBusy(c.ctx, loc.StFN) {
		f.set(SRM_FILE_BUSY, "an upload of this SURL is in progress")
		return
	}
	fi, err := loc.Area.drv.Stat(c.ctx, loc.Name)
	if err != nil {
		f.set(fsStatus(err))
		return
	}
	if fi.IsDir() {
		f.set(SRM_INVALID_PATH, "the SURL is a directory")
		return
	}
	turl, ok := e.turl(loc, r.Protocols)
	if !ok {
		f.set(SRM_NOT_SUPPORTED, noProtocol(r.Protocols))
		return
	}
	f.FileSize = fi.Size
	if fi.Locality == fs.Nearline {
		e.recall(c.ctx, r, f, loc, SRM_FILE_PINNED, turl)
		return
	}
	f.TURL = turl
	f.PinExpires = now.Unix() + r.PinLifetime
	f.set(SRM_FILE_PINNED, "")
}

func (e *engine) doBoL(c *call, r *request, f *file, now time.Time) {
	loc, code, expl := e.s.locate(c, f.SURL, OpRead)
	if loc == nil {
		f.set(code, expl)
		return
	}
	if e.putBusy(c.ctx, loc.StFN) {
		f.set(SRM_FILE_BUSY, "an upload of this SURL is in progress")
		return
	}
	fi, err := loc.Area.drv.Stat(c.ctx, loc.Name)
	if err != nil {
		f.set(fsStatus(err))
		return
	}
	if fi.IsDir() {
		f.set(SRM_INVALID_PATH, "the SURL is a directory")
		return
	}
	f.FileSize = fi.Size
	if fi.Locality == fs.Nearline {
		e.recall(c.ctx, r, f, loc, SRM_SUCCESS, "")
		return
	}
	f.PinExpires = now.Unix() + r.PinLifetime
	f.set(SRM_SUCCESS, "file is online")
}

// recall marks f INPROGRESS and starts a recall; when it completes, the
// file moves to done (FILE_PINNED for gets, SUCCESS for bring-online) or
// FAILURE, and the request status is recomputed.
func (e *engine) recall(ctx context.Context, r *request, f *file, loc *Location, done StatusCode, turl string) {
	st, ok := loc.Area.drv.(fs.Stager)
	if !ok {
		f.set(SRM_FILE_UNAVAILABLE, "file is not online and the storage area has no tape")
		return
	}
	f.set(SRM_REQUEST_INPROGRESS, "recalling file from tape")
	ctx = e.runCtx
	ch, errp := st.Recall(ctx, loc.Name)
	token, fid, pin := r.Token, f.ID, r.PinLifetime
	e.wg.Add(1) // the caller is a worker or a handler, both waited for
	e.recalls.Add(1)
	go func() {
		defer e.wg.Done()
		defer e.recalls.Add(-1)
		select {
		case <-ch:
		case <-ctx.Done():
			return // restart requeues the request
		}
		upd := *f
		if *errp != nil {
			e.log.WithError(*errp).WithField("token", token).Warn("recall from tape failed")
			upd.set(SRM_FAILURE, "error recalling file from tape")
		} else {
			upd.set(done, "")
			upd.TURL = turl
			upd.PinExpires = time.Now().Unix() + pin
		}
		upd.ID = fid
		if err := e.saveFiles(ctx, nil, []*file{&upd}, nil, SRM_REQUEST_INPROGRESS); err != nil {
			e.log.WithError(err).WithField("token", token).Error("saving recall outcome")
			return
		}
		e.refreshRequest(ctx, token)
	}()
}

// refreshRequest recomputes a request's status from its files.
func (e *engine) refreshRequest(ctx context.Context, token string) {
	r, files, err := e.byToken(ctx, token)
	if err != nil || r == nil {
		return
	}
	st, expl := requestStatus(r.Type, files)
	if st == r.Status {
		return
	}
	_, err = e.s.db.ExecContext(ctx, "UPDATE srm_requests SET status = ?, explanation = ? WHERE id = ? AND status IN (?, ?)",
		st, expl, r.ID, SRM_REQUEST_INPROGRESS, SRM_REQUEST_QUEUED)
	if err != nil {
		e.log.WithError(err).WithField("token", token).Warn("updating request status")
	}
}

func (e *engine) doPut(c *call, r *request, f *file, now time.Time) {
	loc, code, expl := e.s.locate(c, f.SURL, OpWrite)
	if loc == nil {
		f.set(code, expl)
		return
	}
	if loc.StFN == loc.Area.Config.Prefix {
		f.set(SRM_INVALID_PATH, "the root of a storage area is a directory")
		return
	}
	overwrite := r.Overwrite == "A" || r.Overwrite == "D"
	if e.putBusy(c.ctx, loc.StFN) {
		// [SRM 2.2, 5.5.2 t)]
		if overwrite {
			f.set(SRM_FILE_BUSY, "another upload of this SURL is in progress")
		} else {
			f.set(SRM_DUPLICATION_ERROR, "another upload of this SURL is in progress and overwrite is not allowed")
		}
		return
	}
	drv := loc.Area.drv
	if fi, err := drv.Stat(c.ctx, loc.Name); err == nil {
		if fi.IsDir() {
			f.set(SRM_INVALID_PATH, "the SURL is a directory")
			return
		}
		if !overwrite {
			// srm-ifce maps this phrase (sic) to EEXIST.
			f.set(SRM_DUPLICATION_ERROR, "file exists, overwite is not allowed")
			return
		}
	} else if !errors.Is(err, iofs.ErrNotExist) {
		f.set(fsStatus(err))
		return
	}
	// The previous file stays until srmPutDone, so the whole expected size
	// is needed, not the difference.
	need := max(f.ExpectedSize, 0)
	code, expl, dyn := e.s.checkPutSpace(c.ctx, r.SpaceToken, r.DN, loc, need)
	if code != SRM_SUCCESS {
		f.set(code, expl)
		return
	}
	turl, ok := e.turl(loc, r.Protocols)
	if !ok {
		f.set(SRM_NOT_SUPPORTED, noProtocol(r.Protocols))
		return
	}
	u := &upload{token: r.Token, area: loc.Area}
	if dyn != nil {
		u.space = dyn.Token
	} else {
		u.reserved = putReservation(loc.Area, f.ExpectedSize)
		if !loc.Area.reserve(u.reserved) {
			f.set(SRM_NO_FREE_SPACE, "not enough free space in storage area "+loc.Area.Config.Name+": "+strconv.FormatInt(max(loc.Area.Free(), 0), 10)+" bytes left")
			return
		}
	}
	if !e.holdPut(loc.StFN, u) {
		loc.Area.unreserve(u.reserved)
		f.set(SRM_FILE_BUSY, "another upload of this SURL is in progress")
		return
	}
	// Parent directories are created as needed (StoRM's
	// directory.automatic-creation=true).
	if err := e.mkdirAll(c.ctx, loc.Area, path.Dir(loc.StFN)); err != nil {
		e.releasePut(loc.StFN, r.Token)
		f.set(fsStatus(err))
		return
	}
	f.TURL = putTURL(turl, r.Token)
	f.PinExpires = now.Unix() + int64(e.cfg.PutLifetime/time.Second)
	f.set(SRM_SPACE_AVAILABLE, "")
}

// mkdirAll creates stfn and its missing parents through the driver.
func (e *engine) mkdirAll(ctx context.Context, a *Area, stfn string) error {
	loc, err := e.s.ns.Resolve(stfn)
	if err != nil {
		return err
	}
	if fi, err := a.drv.Stat(ctx, loc.Name); err == nil {
		if !fi.IsDir() {
			if fi.IsLink() {
				return &iofs.PathError{Op: "mkdir", Path: loc.Name, Err: rootfs.ErrSymlink}
			}
			return &iofs.PathError{Op: "mkdir", Path: loc.Name, Err: syscall.ENOTDIR}
		}
		return nil
	} else if !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	if stfn != a.Config.Prefix && stfn != "/" {
		if err := e.mkdirAll(ctx, a, path.Dir(stfn)); err != nil {
			return err
		}
	}
	if err := a.drv.Mkdir(ctx, loc.Name); err != nil && !errors.Is(err, iofs.ErrExist) {
		return err
	}
	return nil
}

// abortSURL aborts the unfinished gets and puts of a SURL (srmRm).
func (e *engine) abortSURL(ctx context.Context, stfn, why string) {
	u := e.heldBy(stfn)
	var tokens []string
	err := e.s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		tokens = tokens[:0]
		if err := tx.SelectContext(ctx, &tokens, `SELECT DISTINCT r.token FROM srm_files f JOIN srm_requests r ON r.id = f.request_id
			WHERE f.stfn = ? AND f.status IN (?, ?, ?, ?)`, stfn, SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS, SRM_FILE_PINNED, SRM_SPACE_AVAILABLE); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE srm_files SET status = ?, explanation = ? WHERE stfn = ? AND status IN (?, ?, ?, ?)",
			SRM_ABORTED, why, stfn, SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS, SRM_FILE_PINNED, SRM_SPACE_AVAILABLE)
		return err
	})
	if err != nil {
		e.log.WithError(err).WithField("stfn", stfn).Warn("aborting requests on a removed SURL")
		return
	}
	if u != nil {
		e.dropUpload(ctx, stfn, u.token)
	}
	for _, t := range tokens {
		e.refreshRequest(ctx, t)
	}
}

// agents expires pins and uploads and purges old requests, every
// AgentInterval.
func (e *engine) agents(ctx context.Context) {
	tick := time.NewTicker(e.cfg.AgentInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := e.expire(ctx, time.Now()); err != nil && ctx.Err() == nil {
			e.log.WithError(err).Warn("expiring pins and uploads failed")
		}
		if err := e.s.expireSpaces(ctx, time.Now()); err != nil && ctx.Err() == nil {
			e.log.WithError(err).Warn("expiring space reservations failed")
		}
	}
}

// expire releases pins past their lifetime, expires uploads never
// completed with PutDone (removing their partial file), and deletes
// finished requests older than RequestRetention.
func (e *engine) expire(ctx context.Context, now time.Time) error {
	d := e.s.db
	if _, err := d.ExecContext(ctx, `UPDATE srm_files SET status = ?, explanation = ? WHERE status = ? AND pin_expires > 0 AND pin_expires < ?`,
		SRM_RELEASED, "pin lifetime expired", SRM_FILE_PINNED, now.Unix()); err != nil {
		return err
	}
	if _, err := d.ExecContext(ctx, `UPDATE srm_files SET status = ?, explanation = ? WHERE status = ? AND pin_expires > 0 AND pin_expires < ?
		AND request_id IN (SELECT id FROM srm_requests WHERE rtype = ?)`,
		SRM_RELEASED, "pin lifetime expired", SRM_SUCCESS, now.Unix(), typeBoL); err != nil {
		return err
	}
	var stale []struct {
		ID    int64  `db:"id"`
		StFN  string `db:"stfn"`
		Token string `db:"token"`
	}
	if err := d.SelectContext(ctx, &stale, `SELECT f.id, f.stfn, r.token FROM srm_files f JOIN srm_requests r ON r.id = f.request_id
		WHERE f.status = ? AND f.pin_expires > 0 AND f.pin_expires < ? LIMIT 1000`, SRM_SPACE_AVAILABLE, now.Unix()); err != nil {
		return err
	}
	for _, s := range stale {
		res, err := d.ExecContext(ctx, "UPDATE srm_files SET status = ?, explanation = ? WHERE id = ? AND status = ?",
			SRM_FILE_LIFETIME_EXPIRED, "no srmPutDone within the put lifetime", s.ID, SRM_SPACE_AVAILABLE)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			e.dropUpload(ctx, s.StFN, s.Token)
			e.refreshRequest(ctx, s.Token)
		}
	}
	// Requests whose desiredTotalRequestTime passed before they finished.
	var late []string
	if err := d.SelectContext(ctx, &late, "SELECT token FROM srm_requests WHERE status IN (?, ?) AND deadline > 0 AND deadline < ? LIMIT 1000",
		SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS, now.Unix()); err != nil {
		return err
	}
	for _, tok := range late {
		if err := e.timeOut(ctx, tok); err != nil {
			return err
		}
	}
	cutoff := now.Add(-e.cfg.RequestRetention).Unix()
	return d.InTx(ctx, func(tx *sqlx.Tx) error {
		var ids []int64
		if err := tx.SelectContext(ctx, &ids, "SELECT id FROM srm_requests WHERE created < ? AND status NOT IN (?, ?) LIMIT 1000",
			cutoff, SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS); err != nil || len(ids) == 0 {
			return err
		}
		q, args, _ := sqlx.In("DELETE FROM srm_files WHERE request_id IN (?) AND status NOT IN (?, ?)", ids, SRM_FILE_PINNED, SRM_SPACE_AVAILABLE)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		// Requests still holding a pin or an upload are kept until it ends.
		q, args, _ = sqlx.In("DELETE FROM srm_requests WHERE id IN (?) AND id NOT IN (SELECT request_id FROM srm_files)", ids)
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
}

// dropUpload discards the staged data of an abandoned upload (the previous
// file, if any, is untouched) and frees its SURL and reservation.
func (e *engine) dropUpload(ctx context.Context, stfn, token string) {
	if u := e.heldBy(stfn); u == nil || u.token != token {
		return
	}
	if loc, err := e.s.ns.Resolve(stfn); err == nil {
		if err := discardStaged(ctx, loc, token); err != nil {
			e.log.WithError(err).WithField("stfn", stfn).Warn("removing the data of an abandoned upload")
		}
	}
	e.releasePut(stfn, token)
}

// timeOut ends a request whose total request time passed: its unfinished
// files fail, and the request becomes SRM_REQUEST_TIMED_OUT.
func (e *engine) timeOut(ctx context.Context, token string) error {
	return e.s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var r request
		if err := tx.GetContext(ctx, &r, "SELECT "+reqCols+" FROM srm_requests WHERE token = ?", token); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE srm_requests SET status = ?, explanation = ? WHERE id = ? AND status IN (?, ?)",
			SRM_REQUEST_TIMED_OUT, "desiredTotalRequestTime expired", r.ID, SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE srm_files SET status = ?, explanation = ? WHERE request_id = ? AND status IN (?, ?)",
			SRM_FAILURE, "request timed out", r.ID, SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS)
		return err
	})
}
