package db

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/migrations"
)

// Migration is one schema file.
type Migration struct {
	Version string // the file name without .sql, e.g. "0001_inventory"
	SQL     string
}

// Migrations lists the embedded migrations of a dialect in the order they
// are applied.
func Migrations(dialect Dialect) ([]Migration, error) {
	dir := string(dialect)
	entries, err := fs.ReadDir(migrations.FS, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations for %s: %w", dialect, err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		b, err := fs.ReadFile(migrations.FS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: strings.TrimSuffix(e.Name(), ".sql"), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Migrate applies every embedded migration that the database has not seen
// yet and returns the versions it applied. Two processes migrating the same
// MySQL database at once serialize on a named lock; on SQLite the immediate
// transaction does the same.
func (d *DB) Migrate(ctx context.Context) ([]string, error) {
	all, err := Migrations(d.Dialect)
	if err != nil {
		return nil, err
	}
	if _, err := d.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version VARCHAR(128) NOT NULL PRIMARY KEY,
		applied_at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("migrate %s: %w", d.Name, err)
	}
	conn, err := d.Connx(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if d.Dialect == MySQL {
		var got int
		if err := conn.GetContext(ctx, &got, "SELECT GET_LOCK('dynamo_migrate', 60)"); err != nil || got != 1 {
			return nil, fmt.Errorf("migrate %s: could not take the migration lock (another process migrating?): %v", d.Name, err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK('dynamo_migrate')")
	}
	var done []string
	if err := conn.SelectContext(ctx, &done, "SELECT version FROM schema_migrations"); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(done))
	for _, v := range done {
		seen[v] = true
	}
	var applied []string
	for _, m := range all {
		if seen[m.Version] {
			continue
		}
		// MySQL commits DDL implicitly, so a failed migration can leave part
		// of a file applied; migrations are therefore written with
		// IF NOT EXISTS so that a rerun completes them.
		if _, err := conn.ExecContext(ctx, m.SQL); err != nil {
			return applied, fmt.Errorf("migrate %s: %s: %w", d.Name, m.Version, err)
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", m.Version, time.Now().Unix()); err != nil {
			return applied, fmt.Errorf("migrate %s: record %s: %w", d.Name, m.Version, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}
