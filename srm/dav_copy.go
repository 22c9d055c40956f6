package srm

import (
	"context"
	"errors"
	iofs "io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/dynamo-go/dynamo/srm/fs"
)

// davCopyMove is a local COPY or MOVE (RFC 4918 §9.8, §9.9): Destination on
// this endpoint, Overwrite (default T: the destination is deleted first),
// Depth (COPY: 0 or infinity; MOVE: infinity). Within one area a MOVE is a
// rename; across areas it is a copy and a delete. Dead properties follow.
func (s *Server) davCopyMove(w http.ResponseWriter, r *http.Request, src *Location, move bool) {
	ctx := r.Context()
	dstPath, local, err := s.destination(r, r.Header.Get("Destination"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !local {
		httpError(w, http.StatusBadGateway, "the destination is on another server: use a third-party COPY")
		return
	}
	dst, err := s.ns.Resolve(dstPath)
	if err != nil {
		if errors.Is(err, ErrEscape) {
			httpError(w, http.StatusForbidden, "the destination leaves its storage area or names a reserved file")
			return
		}
		httpError(w, http.StatusConflict, "no storage area serves the destination")
		return
	}
	deep := true
	switch d := strings.ToLower(r.Header.Get("Depth")); d {
	case "", "infinity":
	case "0":
		if move {
			httpError(w, http.StatusBadRequest, "MOVE takes Depth: infinity only")
			return
		}
		deep = false
	default:
		httpError(w, http.StatusBadRequest, "Depth must be 0 or infinity")
		return
	}
	overwrite := true
	switch r.Header.Get("Overwrite") {
	case "", "T", "t":
	case "F", "f":
		overwrite = false
	default:
		httpError(w, http.StatusBadRequest, "Overwrite must be T or F")
		return
	}
	srcAcc := accRead
	if move {
		srcAcc = accDelete
	}
	if !s.allow(w, r, src, srcAcc) {
		return
	}
	fi, err := src.Area.drv.Stat(ctx, src.Name)
	if err != nil {
		davFSError(w, err)
		return
	}
	if src.StFN == dst.StFN {
		httpError(w, http.StatusForbidden, "source and destination are the same resource")
		return
	}
	if fi.IsDir() && under(dst.StFN, src.StFN, "/") {
		httpError(w, http.StatusConflict, "the destination lies inside the source collection")
		return
	}
	if dst.Name == "" || (move && src.Name == "") {
		httpError(w, http.StatusForbidden, "the root of a storage area cannot be replaced or moved")
		return
	}
	dfi, derr := dst.Area.drv.Stat(ctx, dst.Name)
	exists := derr == nil
	dstAcc := accCreate
	if exists {
		dstAcc = accModify
	}
	if !s.allow(w, r, dst, dstAcc) {
		return
	}
	if !s.parentIsCollection(w, r, dst) {
		return
	}
	if exists {
		if !overwrite {
			httpError(w, http.StatusPreconditionFailed, "the destination exists and Overwrite is F")
			return
		}
		if !s.allow(w, r, dst, accDelete) {
			return
		}
		if err := s.davRemove(ctx, dst, dfi); err != nil {
			davFSError(w, err)
			return
		}
	}
	if move && src.Area == dst.Area {
		err = s.renameTree(ctx, src, dst, fi)
	} else {
		err = s.copyTree(ctx, src, dst, fi, deep)
		if err == nil && move {
			err = s.davRemove(ctx, src, fi)
		}
	}
	if err != nil {
		davFSError(w, err)
		return
	}
	if err := s.copyProps(ctx, src.StFN, dst.StFN, move, deep); err != nil {
		s.log.WithError(err).WithField("stfn", dst.StFN).Warn("copying WebDAV properties")
	}
	if exists {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Location", s.publicURL(r, dst.StFN))
	w.WriteHeader(http.StatusCreated)
}

// renameTree moves src to dst in one area; SRM requests on the old names
// are aborted (their SURL is gone).
func (s *Server) renameTree(ctx context.Context, src, dst *Location, fi fs.FileInfo) error {
	if s.engine.heldUnder(src.StFN) {
		return errBusy
	}
	if err := src.Area.drv.Rename(ctx, src.Name, dst.Name); err != nil {
		return err
	}
	if fi.Mode.IsRegular() {
		s.engine.abortSURL(ctx, src.StFN, "the file was moved")
	}
	return nil
}

// copyTree copies src to the (absent) dst: a file's bytes atomically, a
// collection's members when deep. Links are not copied (never followed).
func (s *Server) copyTree(ctx context.Context, src, dst *Location, fi fs.FileInfo, deep bool) error {
	switch {
	case fi.IsLink():
		return nil
	case fi.IsDir():
		if err := dst.Area.drv.Mkdir(ctx, dst.Name); err != nil && !errors.Is(err, iofs.ErrExist) {
			return err
		}
		if !deep {
			return nil
		}
		entries, err := src.Area.drv.List(ctx, src.Name)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Mode&iofs.ModeIrregular != 0 {
				continue
			}
			cs := &Location{Area: src.Area, StFN: path.Join(src.StFN, e.Name), Name: path.Join(src.Name, e.Name)}
			cd := &Location{Area: dst.Area, StFN: path.Join(dst.StFN, e.Name), Name: path.Join(dst.Name, e.Name)}
			if err := s.copyTree(ctx, cs, cd, e, true); err != nil {
				return err
			}
		}
		return nil
	}
	if fi.Locality == fs.Nearline {
		return fs.ErrNotOnline
	}
	if !dst.Area.reserve(fi.Size) {
		return errNoSpace
	}
	defer dst.Area.unreserve(fi.Size)
	f, err := src.Area.drv.Open(ctx, src.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = s.writeFile(ctx, dst, f, -1, fi.Size, "", false)
	return err
}

// errNoSpace: the destination area has not the room.
var errNoSpace = errors.New("not enough space in the storage area")

// heldUnder reports whether an upload holds dir or a name below it.
func (e *engine) heldUnder(dir string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for stfn := range e.puts {
		if under(stfn, dir, "/") {
			return true
		}
	}
	return false
}
