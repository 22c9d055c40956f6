package srm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// Dynamic space reservations (srmReserveSpace): a guaranteed number of
// bytes inside one storage area, held by the client that reserved it.
// Reservations are synchronous (as in StoRM). The unused part of every
// reservation is subtracted from the area's free space; files written with
// the token (targetSpaceToken) consume it at srmPutDone.

// space is a row of srm_spaces.
type space struct {
	Token       string `db:"token"`
	Area        string `db:"area"`
	Owner       string `db:"owner_dn"`
	Description string `db:"description"`
	Size        int64  `db:"size"`
	Used        int64  `db:"used"`
	Created     int64  `db:"created"`
	Expires     int64  `db:"expires"`
}

const spaceCols = "token, area, owner_dn, description, size, used, created, expires"

func (sp *space) unused() int64 { return max(sp.Size-sp.Used, 0) }

type reserveSpaceResponse struct {
	ReturnStatus        TReturnStatus        `xml:"returnStatus"`
	RetentionPolicyInfo *retentionPolicyInfo `xml:"retentionPolicyInfo,omitempty"`
	TotalReserved       *int64               `xml:"sizeOfTotalReservedSpace,omitempty"`
	GuaranteedReserved  *int64               `xml:"sizeOfGuaranteedReservedSpace,omitempty"`
	Lifetime            *int64               `xml:"lifetimeOfReservedSpace,omitempty"`
	SpaceToken          string               `xml:"spaceToken,omitempty"`
}

// areaByName returns the area with the given name, or nil.
func (ns *Namespace) areaByName(name string) *Area {
	for _, a := range ns.areas {
		if a.Config.Name == name {
			return a
		}
	}
	return nil
}

// loadSpaces accounts the existing reservations in their areas (at start).
func (s *Server) loadSpaces(ctx context.Context) error {
	var sps []space
	if err := s.db.SelectContext(ctx, &sps, "SELECT "+spaceCols+" FROM srm_spaces"); err != nil {
		return fmt.Errorf("srm: loading space reservations: %w", err)
	}
	for _, sp := range sps {
		if a := s.ns.areaByName(sp.Area); a != nil {
			a.reserved.Add(sp.unused())
		}
	}
	return nil
}

// spaceByToken returns a dynamic reservation, or nil when unknown.
func (s *Server) spaceByToken(ctx context.Context, tok string) (*space, error) {
	var sp space
	err := s.db.GetContext(ctx, &sp, "SELECT "+spaceCols+" FROM srm_spaces WHERE token = ?", tok)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &sp, nil
}

func (s *Server) reserveSpace(c *call, req *node) (any, error) {
	bad := func(code StatusCode, msg string) (any, error) {
		return reserveSpaceResponse{ReturnStatus: rs(code, msg)}, nil
	}
	rp := req.Child("retentionPolicyInfo")
	if rp == nil || rp.Str("retentionPolicy") == "" {
		return bad(SRM_INVALID_REQUEST, "retentionPolicyInfo is required")
	}
	guar, err := req.Int("desiredSizeOfGuaranteedSpace", 0)
	if err != nil || guar <= 0 {
		return bad(SRM_INVALID_REQUEST, "desiredSizeOfGuaranteedSpace must be a positive number of bytes")
	}
	total, err := req.Int("desiredSizeOfTotalSpace", guar)
	if err != nil || total < guar {
		total = guar
	}
	life, err := req.Int("desiredLifetimeOfReservedSpace", -1)
	if err != nil {
		return bad(SRM_INVALID_REQUEST, err.Error())
	}
	var area *Area
	for _, a := range s.ns.Areas() {
		if a.Config.RetentionPolicy == rp.Str("retentionPolicy") &&
			(rp.Str("accessLatency") == "" || rp.Str("accessLatency") == a.Config.AccessLatency) && a.Authorize(c.id, OpWrite) {
			area = a
			break
		}
	}
	if area == nil {
		return bad(SRM_NOT_SUPPORTED, "no storage area you may write to offers retention policy "+rp.Str("retentionPolicy")+" "+rp.Str("accessLatency"))
	}
	granted, code := total, SRM_SUCCESS
	// Check and claim under the area's space lock, so two reservations (or
	// a reservation and an upload) cannot both take the last free bytes;
	// the claim is given back if the insert fails.
	area.spaceMu.Lock()
	if free := area.Free(); free >= 0 {
		switch {
		case free < guar:
			area.spaceMu.Unlock()
			return bad(SRM_NO_FREE_SPACE, fmt.Sprintf("storage area %s has %d bytes free", area.Config.Name, free))
		case free < total:
			granted, code = free, SRM_LOWER_SPACE_GRANTED
		}
	}
	area.reserved.Add(granted)
	area.spaceMu.Unlock()
	var b [8]byte
	_, _ = rand.Read(b[:])
	now := time.Now()
	sp := space{Token: "space-" + hex.EncodeToString(b[:]), Area: area.Config.Name, Owner: c.id.DN,
		Description: trunc(req.Str("userSpaceTokenDescription"), 255), Size: granted, Created: now.Unix()}
	if life > 0 {
		sp.Expires = now.Unix() + life
	}
	if _, err := s.db.NamedExecContext(c.ctx, "INSERT INTO srm_spaces ("+spaceCols+") VALUES (:token, :area, :owner_dn, :description, :size, :used, :created, :expires)", &sp); err != nil {
		area.reserved.Add(-granted)
		s.log.WithError(err).Error("storing a space reservation")
		return bad(SRM_INTERNAL_ERROR, "could not store the reservation: retry")
	}
	return reserveSpaceResponse{ReturnStatus: rs(code, ""), SpaceToken: sp.Token,
		RetentionPolicyInfo: &retentionPolicyInfo{area.Config.RetentionPolicy, area.Config.AccessLatency},
		TotalReserved:       i64(granted), GuaranteedReserved: i64(granted), Lifetime: i64(life)}, nil
}

func (s *Server) releaseSpace(c *call, req *node) (any, error) {
	tok := req.Str("spaceToken")
	sp, err := s.spaceByToken(c.ctx, tok)
	if err != nil {
		return returnOnly{rs(SRM_INTERNAL_ERROR, "could not read the reservation: retry")}, nil
	}
	if sp == nil {
		return returnOnly{rs(SRM_INVALID_REQUEST, "unknown space token "+tok+" (static area tokens cannot be released)")}, nil
	}
	if sp.Owner != c.id.DN {
		return returnOnly{rs(SRM_AUTHORIZATION_FAILURE, "space "+tok+" belongs to another client")}, nil
	}
	if err := s.dropSpace(c.ctx, sp); err != nil {
		return returnOnly{rs(SRM_INTERNAL_ERROR, "could not release: retry")}, nil
	}
	// Files written into the space stay: they are ordinary files of the area.
	return returnOnly{rs(SRM_SUCCESS, "")}, nil
}

// dropSpace deletes a reservation and returns its unused bytes to the area.
func (s *Server) dropSpace(ctx context.Context, sp *space) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM srm_spaces WHERE token = ?", sp.Token)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		if a := s.ns.areaByName(sp.Area); a != nil {
			a.reserved.Add(-sp.unused())
		}
	}
	return nil
}

// expireSpaces drops reservations past their lifetime.
func (s *Server) expireSpaces(ctx context.Context, now time.Time) error {
	var sps []space
	if err := s.db.SelectContext(ctx, &sps, "SELECT "+spaceCols+" FROM srm_spaces WHERE expires > 0 AND expires < ?", now.Unix()); err != nil {
		return err
	}
	for i := range sps {
		if err := s.dropSpace(ctx, &sps[i]); err != nil {
			return err
		}
	}
	return nil
}

// checkPutSpace validates a put's targetSpaceToken for location loc and
// the bytes it needs; code is SRM_SUCCESS when the put may go on, and
// dynamic is the reservation it will consume (nil for none or a static
// token, where the area's free space applies).
func (s *Server) checkPutSpace(ctx context.Context, tok, owner string, loc *Location, need int64) (code StatusCode, expl string, dynamic *space) {
	if tok == "" || tok == loc.Area.Config.SpaceToken {
		return SRM_SUCCESS, "", nil
	}
	if s.ns.AreaByToken(tok) != nil {
		return SRM_INVALID_REQUEST, "the SURL is not in space " + tok, nil
	}
	sp, err := s.spaceByToken(ctx, tok)
	switch {
	case err != nil:
		return SRM_INTERNAL_ERROR, "could not read space " + tok + ": retry", nil
	case sp == nil:
		return SRM_INVALID_REQUEST, "unknown space token " + tok, nil
	case sp.Owner != owner:
		return SRM_AUTHORIZATION_FAILURE, "space " + tok + " belongs to another client", nil
	case sp.Area != loc.Area.Config.Name:
		return SRM_INVALID_REQUEST, "the SURL is not in space " + tok + " (storage area " + sp.Area + ")", nil
	case sp.Expires > 0 && sp.Expires < time.Now().Unix():
		return SRM_SPACE_LIFETIME_EXPIRED, "space " + tok + " has expired", nil
	case need > sp.unused():
		return SRM_NO_FREE_SPACE, fmt.Sprintf("space %s has %d bytes left", tok, sp.unused()), nil
	}
	return SRM_SUCCESS, "", sp
}

// consumeSpace charges a completed file to its reservation.
func (s *Server) consumeSpace(ctx context.Context, tok string, size int64) {
	sp, err := s.spaceByToken(ctx, tok)
	if err != nil || sp == nil {
		return
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE srm_spaces SET used = used + ? WHERE token = ?", size, tok); err != nil {
		s.log.WithError(err).WithField("space", tok).Warn("charging a file to its space")
		return
	}
	if a := s.ns.areaByName(sp.Area); a != nil {
		a.reserved.Add(-min(size, sp.unused()))
	}
}
