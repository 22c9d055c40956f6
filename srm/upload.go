package srm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	iofs "io/fs"
	"path"

	"github.com/dynamo-go/dynamo/srm/fs"
	"github.com/dynamo-go/dynamo/srm/fs/rootfs"
)

// Uploads (srmPrepareToPut, then data PUTs or third-party pulls, then
// srmPutDone) never touch the file they target before srmPutDone:
//
//   - srmPrepareToPut reserves space in the area and holds the SURL;
//   - each data PUT (or pull) writes an atomic temporary and commits it to
//     the upload's staging name, a hidden name in the target's directory
//     derived from the request token (so it survives a restart);
//   - srmPutDone replaces the target with the staged file (a rename; the
//     directory is fsynced), so a hard-linked or symlinked target is
//     replaced as a name, never written through;
//   - srmAbort*, srmRm and expiry remove the staged file: the previous file
//     is untouched.

// stagePrefix starts staging names (reserved, so hidden and refused from
// clients).
const stagePrefix = rootfs.ReservedPrefix + "put-"

// stageName is where the upload of token to name keeps its data until
// srmPutDone.
func stageName(name, token string) string {
	h := sha256.Sum256([]byte(token + "\x00" + path.Base(name)))
	base := stagePrefix + hex.EncodeToString(h[:16])
	if dir := path.Dir(name); dir != "." {
		return dir + "/" + base
	}
	return base
}

// upload is a held SURL: the upload holding it and what it reserved.
type upload struct {
	token string
	// space is the dynamic reservation (srmReserveSpace) the upload writes
	// into, or "".
	space string
	// reserved is what the upload holds of its area's free space (0 when
	// it writes into a dynamic reservation, which is reserved already).
	reserved int64
	area     *Area
}

// reserve claims n bytes of the area's free space for an upload; false
// when they are not free. Check and claim happen under one lock, so two
// uploads cannot both take the last free bytes.
func (a *Area) reserve(n int64) bool {
	a.spaceMu.Lock()
	defer a.spaceMu.Unlock()
	if lim := a.Config.OnlineSizeLimit; lim > 0 && a.used.Load()+a.reserved.Load()+a.pending.Load()+n > lim {
		return false
	}
	a.pending.Add(n)
	return true
}

// unreserve gives back an upload's reservation.
func (a *Area) unreserve(n int64) { a.pending.Add(-n) }

// putReservation is what an upload of expected bytes (-1: unknown)
// reserves in area a.
func putReservation(a *Area, expected int64) int64 {
	if expected >= 0 {
		return expected
	}
	return a.Config.DefaultPutSize
}

// errTooLarge: a write exceeds what its upload reserved.
var errTooLarge = errors.New("the upload is larger than its reservation")

// writeStaged writes body to the upload's staging name, atomically,
// refusing more than limit bytes (limit < 0: no limit) and checking
// expected (>= 0) exactly. The previous staged data stays until the new
// one is complete.
func writeStaged(ctx context.Context, loc *Location, token string, body io.Reader, limit, expected int64) (int64, error) {
	w, err := loc.Area.drv.Create(ctx, stageName(loc.Name, token))
	if err != nil {
		return 0, err
	}
	defer w.Abort()
	if limit >= 0 {
		body = io.LimitReader(body, limit+1)
	}
	n, err := io.Copy(w, body)
	if err != nil {
		return n, err
	}
	if limit >= 0 && n > limit {
		return n, errTooLarge
	}
	return n, w.Commit(expected, true)
}

// publishStaged makes the staged data of token the content of loc: the
// previous file (if any) is replaced as a name. It returns the new file's
// description and the size of the regular file it replaced.
func publishStaged(ctx context.Context, loc *Location, token string) (fs.FileInfo, int64, error) {
	drv := loc.Area.drv
	stage := stageName(loc.Name, token)
	fi, err := drv.Stat(ctx, stage)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return fi, 0, errNothingUploaded
		}
		return fi, 0, err
	}
	var old int64
	if prev, err := drv.Stat(ctx, loc.Name); err == nil && prev.Mode.IsRegular() {
		old = prev.Size
	}
	if err := drv.Replace(ctx, stage, loc.Name); err != nil {
		return fi, 0, err
	}
	fi.Name = path.Base(loc.Name)
	return fi, old, nil
}

// errNothingUploaded: srmPutDone before any data arrived.
var errNothingUploaded = errors.New("no data was uploaded to this SURL")

// discardStaged removes the staged data of an upload that will not be
// completed.
func discardStaged(ctx context.Context, loc *Location, token string) error {
	err := loc.Area.drv.Remove(ctx, stageName(loc.Name, token))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	return err
}
