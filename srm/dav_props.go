package srm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Dead properties live in the request database (table srm_dav_props), not
// on the files: the SE's filesystem layer stores only data, and the
// database already follows the namespace operations the SE performs.

// maxDeadProps bounds the dead properties of one resource, and
// maxDeadPropBytes one value, so PROPPATCH cannot grow the database
// without limit.
const (
	maxDeadProps     = 256
	maxDeadPropBytes = 64 << 10
)

func propID(stfn string, n xml.Name) string {
	h := sha256.Sum256([]byte(stfn + "\x00" + n.Space + "\x00" + n.Local))
	return hex.EncodeToString(h[:])
}

// likePrefix is a LIKE pattern matching everything below dir.
func likePrefix(dir string) string {
	// "!" escapes: a backslash means different things in MySQL and
	// SQLite string literals.
	r := strings.NewReplacer(`!`, `!!`, `%`, `!%`, `_`, `!_`)
	if dir == "/" {
		return "/%"
	}
	return r.Replace(dir) + "/%"
}

type propRow struct {
	STFN  string `db:"stfn"`
	NS    string `db:"ns"`
	Name  string `db:"name"`
	Value string `db:"value"`
}

// deadProps returns the dead properties of stfn.
func (s *Server) deadProps(ctx context.Context, stfn string) ([]davProp, error) {
	var rows []propRow
	if err := s.db.SelectContext(ctx, &rows, "SELECT stfn, ns, name, value FROM srm_dav_props WHERE stfn = ? ORDER BY ns, name", stfn); err != nil {
		return nil, err
	}
	out := make([]davProp, 0, len(rows))
	for _, r := range rows {
		out = append(out, davProp{Name: xml.Name{Space: r.NS, Local: r.Name}, Value: []byte(r.Value)})
	}
	return out, nil
}

// applyPatch sets and removes dead properties of stfn in one transaction
// (PROPPATCH is all or nothing).
func (s *Server) applyPatch(ctx context.Context, stfn string, ops []patchOp) error {
	return s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		for _, op := range ops {
			id := propID(stfn, op.prop.Name)
			if _, err := tx.ExecContext(ctx, "DELETE FROM srm_dav_props WHERE id = ?", id); err != nil {
				return err
			}
			if op.remove {
				continue
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO srm_dav_props (id, stfn, ns, name, value) VALUES (?, ?, ?, ?, ?)",
				id, stfn, op.prop.Name.Space, op.prop.Name.Local, string(op.prop.Value)); err != nil {
				return err
			}
		}
		return nil
	})
}

// countDeadProps returns how many dead properties stfn has.
func (s *Server) countDeadProps(ctx context.Context, stfn string) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, "SELECT COUNT(*) FROM srm_dav_props WHERE stfn = ?", stfn)
	return n, err
}

// dropProps removes the dead properties of stfn and, for a collection,
// of everything below it.
func (s *Server) dropProps(ctx context.Context, stfn string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM srm_dav_props WHERE stfn = ? OR stfn LIKE ? ESCAPE '!'`, stfn, likePrefix(stfn))
	return err
}

// copyProps gives to (and, when deep, its subtree) the dead properties of
// from (and its subtree), replacing what to had; with move, from's are
// removed.
func (s *Server) copyProps(ctx context.Context, from, to string, move, deep bool) error {
	return s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var rows []propRow
		q, args := "SELECT stfn, ns, name, value FROM srm_dav_props WHERE stfn = ?", []any{from}
		if deep {
			q, args = q+` OR stfn LIKE ? ESCAPE '!'`, append(args, likePrefix(from))
		}
		if err := tx.SelectContext(ctx, &rows, q, args...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM srm_dav_props WHERE stfn = ? OR stfn LIKE ? ESCAPE '!'`, to, likePrefix(to)); err != nil {
			return err
		}
		if move {
			if _, err := tx.ExecContext(ctx, `DELETE FROM srm_dav_props WHERE stfn = ? OR stfn LIKE ? ESCAPE '!'`, from, likePrefix(from)); err != nil {
				return err
			}
		}
		for _, r := range rows {
			dst := to + strings.TrimPrefix(r.STFN, from)
			if _, err := tx.ExecContext(ctx, "INSERT INTO srm_dav_props (id, stfn, ns, name, value) VALUES (?, ?, ?, ?, ?)",
				propID(dst, xml.Name{Space: r.NS, Local: r.Name}), dst, r.NS, r.Name, r.Value); err != nil {
				return err
			}
		}
		return nil
	})
}

// forgetProps drops the dead properties of a name the SRM side removed, so
// a later file of that name does not inherit them; a failure is logged
// (the file is gone either way).
func (s *Server) forgetProps(ctx context.Context, stfn string) {
	if err := s.dropProps(ctx, stfn); err != nil {
		s.log.WithError(err).WithField("stfn", stfn).Warn("dropping WebDAV properties")
	}
}
