package detox

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// ErrAccess is wrapped by every invalid access record.
var ErrAccess = apierr.New(apierr.ErrBadRequest, "invalid dataset access")

// Access is one report of a dataset being read at a site: Count accesses
// at time At.
type Access struct {
	Dataset string    `json:"dataset"`
	Site    string    `json:"site"`
	Count   int64     `json:"count"`
	At      time.Time `json:"at"`
}

// Validate checks names and values.
func (a Access) Validate() error {
	if err := inventory.CheckDatasetName(a.Dataset); err != nil {
		return fmt.Errorf("%w: dataset %q: %w", ErrAccess, a.Dataset, err)
	}
	if err := inventory.CheckSiteName(a.Site); err != nil {
		return fmt.Errorf("%w: site %q: %w", ErrAccess, a.Site, err)
	}
	if a.Count <= 0 {
		return fmt.Errorf("%w: count %d for %s at %s: must be positive", ErrAccess, a.Count, a.Dataset, a.Site)
	}
	if a.At.IsZero() || a.At.Unix() <= 0 {
		return fmt.Errorf("%w: no time for %s at %s", ErrAccess, a.Dataset, a.Site)
	}
	return nil
}

// RecordAccess adds accesses to the detox_accesses table, aggregated per
// dataset, site and UTC day. All records are validated first and written in
// one transaction, so a bad record loses nothing and writes nothing.
// Accesses are not checked against the inventory: reports may arrive for
// data that has just left it.
func RecordAccess(ctx context.Context, d *db.DB, accs ...Access) error {
	for _, a := range accs {
		if err := a.Validate(); err != nil {
			return err
		}
	}
	return d.InTx(ctx, func(tx *sqlx.Tx) error {
		for _, a := range accs {
			day := a.At.UTC().Truncate(24 * time.Hour).Unix()
			r, err := tx.ExecContext(ctx, `UPDATE detox_accesses SET num_access = num_access + ?,
				last_access = CASE WHEN last_access > ? THEN last_access ELSE ? END
				WHERE dataset_name = ? AND site_name = ? AND day = ?`,
				a.Count, a.At.Unix(), a.At.Unix(), a.Dataset, a.Site, day)
			if err != nil {
				return fmt.Errorf("record access %s at %s: %w", a.Dataset, a.Site, err)
			}
			if n, err := r.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO detox_accesses (dataset_name, site_name, day, num_access, last_access)
				VALUES (?, ?, ?, ?, ?)`, a.Dataset, a.Site, day, a.Count, a.At.Unix()); err != nil {
				return fmt.Errorf("record access %s at %s: %w", a.Dataset, a.Site, err)
			}
		}
		return nil
	})
}

// DBAccesses is the AccessSource over the detox_accesses table. Window
// limits the history read (0: all of it).
type DBAccesses struct {
	DB     *db.DB
	Window time.Duration
}

// Accesses implements AccessSource: per dataset and site, the accesses in
// the window ending at at, and the last one.
func (s DBAccesses) Accesses(ctx context.Context, at time.Time) ([]AccessSummary, error) {
	from := int64(0)
	if s.Window > 0 {
		from = at.Add(-s.Window).Unix()
	}
	var rows []struct {
		Dataset string `db:"dataset_name"`
		Site    string `db:"site_name"`
		N       int64  `db:"n"`
		Last    int64  `db:"last"`
	}
	if err := s.DB.SelectContext(ctx, &rows, `SELECT dataset_name, site_name, SUM(num_access) AS n, MAX(last_access) AS last
		FROM detox_accesses WHERE day >= ? AND day <= ? GROUP BY dataset_name, site_name`, from, at.Unix()); err != nil {
		return nil, fmt.Errorf("read dataset accesses: %w", err)
	}
	out := make([]AccessSummary, len(rows))
	for i, r := range rows {
		out[i] = AccessSummary{Dataset: r.Dataset, Site: r.Site, NumAccess: r.N, LastAccess: r.Last}
	}
	return out, nil
}
