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

func upsertSQL(dialect Dialect, table string, cols, key, update []string) string {
	var b strings.Builder
	ph := strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",")
	switch dialect {
	case MySQL:
		if len(update) == 0 {
			fmt.Fprintf(&b, "INSERT IGNORE INTO %s (%s) VALUES (%s)", table, strings.Join(cols, ","), ph)
			return b.String()
		}
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES (%s) ON DUPLICATE KEY UPDATE ", table, strings.Join(cols, ","), ph)
		for i, c := range update {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=VALUES(%s)", c, c)
		}
	default:
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT(%s) DO ", table, strings.Join(cols, ","), ph, strings.Join(key, ","))
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
