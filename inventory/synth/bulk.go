package synth

import (
	"context"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/db"
)

// bulk batches rows into multi-row INSERT statements per table and commits
// them in transactions of a few thousand rows.
type bulk struct {
	d      *db.DB
	tables map[string]*pending
	order  []string
}

type pending struct {
	cols string
	ncol int
	args []any
}

const rowsPerStmt = 500

func newBulk(d *db.DB) *bulk { return &bulk{d: d, tables: map[string]*pending{}} }

func (b *bulk) add(ctx context.Context, table, cols string, vals ...any) error {
	p := b.tables[table]
	if p == nil {
		p = &pending{cols: cols, ncol: len(vals)}
		b.tables[table] = p
		b.order = append(b.order, table)
	}
	p.args = append(p.args, vals...)
	if len(p.args) >= rowsPerStmt*p.ncol*8 {
		return b.flush(ctx, table)
	}
	return nil
}

func (b *bulk) flush(ctx context.Context, table string) error {
	p := b.tables[table]
	if len(p.args) == 0 {
		return nil
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", p.ncol), ",") + ")"
	err := b.d.InTx(ctx, func(tx *sqlx.Tx) error {
		args := p.args
		for len(args) > 0 {
			n := min(len(args)/p.ncol, rowsPerStmt)
			q := "INSERT INTO " + table + " (" + p.cols + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+",", n), ",")
			if _, err := tx.ExecContext(ctx, q, args[:n*p.ncol]...); err != nil {
				return err
			}
			args = args[n*p.ncol:]
		}
		return nil
	})
	p.args = p.args[:0]
	return err
}

// flushAll writes what is left, parents before children (the order tables
// were first seen in).
func (b *bulk) flushAll(ctx context.Context) error {
	for _, t := range b.order {
		if err := b.flush(ctx, t); err != nil {
			return err
		}
	}
	return nil
}
