package db

import (
	"fmt"
	"strings"
)

// Upsert returns an INSERT statement for table that updates the update
// columns when a row with the same key already exists. cols lists every
// inserted column in placeholder order; key names the unique key columns
// (needed by SQLite's ON CONFLICT); update lists the columns to overwrite
// (empty means "keep the existing row", i.e. insert-or-ignore).
func (d *DB) Upsert(table string, cols, key, update []string) string {
	return upsertSQL(d.Dialect, table, cols, key, update)
}

// UpsertRows is Upsert for rows rows in one statement: the placeholders of
// every row follow each other. A key repeated within the statement ends
// with the values of its last row on both dialects.
func (d *DB) UpsertRows(table string, cols, key, update []string, rows int) string {
	return upsertRowsSQL(d.Dialect, table, cols, key, update, rows)
}

func upsertSQL(dialect Dialect, table string, cols, key, update []string) string {
	return upsertRowsSQL(dialect, table, cols, key, update, 1)
}

func upsertRowsSQL(dialect Dialect, table string, cols, key, update []string, rows int) string {
	var b strings.Builder
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	ph := strings.TrimSuffix(strings.Repeat(row+",", rows), ",")
	switch dialect {
	case MySQL:
		if len(update) == 0 {
			fmt.Fprintf(&b, "INSERT IGNORE INTO %s (%s) VALUES %s", table, strings.Join(cols, ","), ph)
			return b.String()
		}
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES %s ON DUPLICATE KEY UPDATE ", table, strings.Join(cols, ","), ph)
		for i, c := range update {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=VALUES(%s)", c, c)
		}
	default:
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES %s ON CONFLICT(%s) DO ", table, strings.Join(cols, ","), ph, strings.Join(key, ","))
		if len(update) == 0 {
			b.WriteString("NOTHING")
			return b.String()
		}
		b.WriteString("UPDATE SET ")
		for i, c := range update {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=excluded.%s", c, c)
		}
	}
	return b.String()
}

// ForUpdate is the row-locking suffix for SELECT in a write transaction:
// "FOR UPDATE" on MySQL; empty on SQLite, whose immediate transactions
// already hold the database's write lock.
func (d *DB) ForUpdate() string {
	if d.Dialect == MySQL {
		return " FOR UPDATE"
	}
	return ""
}
