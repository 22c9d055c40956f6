// Package db opens the project's database (SQLite, the embedded default, or
// MySQL/MariaDB in production), applies the embedded migrations, and runs
// transactions with classified errors and bounded retries.
//
// Both dialects run the same queries with `?` placeholders. The few places
// where they differ (upsert syntax, DDL) are confined to this package: see
// dialect.go. Nothing else in the project should switch on the dialect.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DefaultDSN is used when neither --db, DYNAMO_DB nor the configuration names
// a database: a SQLite file below the working directory.
const DefaultDSN = "sqlite:./var/dynamo.db"

// Dialect names the SQL dialect of an open database.
type Dialect string

const (
	SQLite Dialect = "sqlite"
	MySQL  Dialect = "mysql"
)

// DB is an open database. It embeds *sqlx.DB for queries; writes that must be
// atomic go through InTx.
type DB struct {
	*sqlx.DB
	Dialect Dialect
	// Name is the DSN with any password removed, for logs and errors.
	Name string
	// retry bounds InTx's retries of transient errors.
	retry RetryPolicy
}

// RetryPolicy bounds how InTx retries a transaction that failed with a
// transient error (deadlock, lock wait timeout, SQLite busy).
type RetryPolicy struct {
	Attempts int           // total attempts, at least 1
	Initial  time.Duration // first backoff; doubled each retry
	Max      time.Duration // cap on one backoff
}

// DefaultRetry is the retry policy of a newly opened DB.
var DefaultRetry = RetryPolicy{Attempts: 5, Initial: 20 * time.Millisecond, Max: time.Second}

// ParseDSN splits a project DSN ("sqlite:PATH" or
// "mysql://USER:PASS@HOST:PORT/DBNAME?params") into the dialect and the
// driver's own DSN. It never touches the network or the filesystem.
func ParseDSN(dsn string) (Dialect, string, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return "", "", fmt.Errorf("database %q: sqlite DSN needs a path, as in sqlite:./var/dynamo.db", dsn)
		}
		q := ""
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path, q = path[:i], path[i+1:]
		}
		// WAL lets readers run while the one writer commits; busy_timeout
		// absorbs short lock waits; immediate transactions take the write
		// lock at BEGIN so two writers never deadlock on lock upgrade.
		params := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
		if q != "" {
			params += "&" + q
		}
		return SQLite, "file:" + path + "?" + params, nil
	case strings.HasPrefix(dsn, "mysql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", fmt.Errorf("database %q: %w", redact(dsn), err)
		}
		name := strings.TrimPrefix(u.Path, "/")
		if u.Host == "" || name == "" {
			return "", "", fmt.Errorf("database %q: mysql DSN must be mysql://USER:PASS@HOST:PORT/DBNAME", redact(dsn))
		}
		cfg := mysql.NewConfig()
		cfg.Net = "tcp"
		cfg.Addr = u.Host
		if u.Port() == "" {
			cfg.Addr = u.Host + ":3306"
		}
		cfg.DBName = name
		if u.User != nil {
			cfg.User = u.User.Username()
			cfg.Passwd, _ = u.User.Password()
		}
		cfg.ParseTime = false
		cfg.MultiStatements = true
		cfg.InterpolateParams = true
		// Rows affected = rows matched, as SQLite reports it, so that
		// compare-and-set updates read the same on both dialects.
		cfg.ClientFoundRows = true
		cfg.Params = map[string]string{}
		for k, v := range u.Query() {
			cfg.Params[k] = v[0]
		}
		return MySQL, cfg.FormatDSN(), nil
	default:
		return "", "", fmt.Errorf("database %q: unknown kind; use sqlite:PATH or mysql://USER:PASS@HOST:PORT/DBNAME", redact(dsn))
	}
}

// redact removes the password from a mysql:// DSN.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxx")
	}
	return u.String()
}

// Open opens and pings the database named by dsn. For SQLite it creates the
// parent directory. It does not migrate: call Migrate.
func Open(ctx context.Context, dsn string) (*DB, error) {
	dialect, driverDSN, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	driver := string(dialect)
	if dialect == SQLite {
		path := strings.TrimPrefix(strings.SplitN(driverDSN, "?", 2)[0], "file:")
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("database %s: %w", dsn, err)
			}
		}
	}
	x, err := sqlx.Open(driver, driverDSN)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", redact(dsn), err)
	}
	if dialect == SQLite {
		// One connection per reader is fine with WAL, but the write lock is
		// per file: keep the pool small so writers queue in Go, not in
		// busy-wait loops inside SQLite.
		x.SetMaxOpenConns(4)
	} else {
		x.SetMaxOpenConns(16)
		x.SetConnMaxLifetime(time.Hour)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := x.PingContext(pctx); err != nil {
		x.Close()
		return nil, fmt.Errorf("database %s: %w", redact(dsn), err)
	}
	return &DB{DB: x, Dialect: dialect, Name: redact(dsn), retry: DefaultRetry}, nil
}

// InTx runs fn in a transaction and commits it. If fn or the commit fails
// with a transient error (see Retryable), the whole transaction is retried
// with exponential backoff up to the retry policy's bound, so fn must be
// safe to run again: it must only touch the database through tx and must
// not keep state from a failed attempt. Any other error rolls back and is
// returned as is (wrapped errors stay matchable with errors.Is/As).
//
// Under a call budget (WithCallTimeout) the whole of InTx, retries
// included, is one call.
func (d *DB) InTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	stop := txBudget(ctx)
	defer stop()
	backoff := d.retry.Initial
	var err error
	for attempt := 1; ; attempt++ {
		err = timedOut(ctx, d.tryTx(ctx, fn))
		if err == nil || !Retryable(err) || attempt >= d.retry.Attempts {
			return err
		}
		select {
		case <-ctx.Done():
			return timedOut(ctx, errors.Join(err, ctx.Err()))
		case <-time.After(backoff):
		}
		backoff *= 2
		if backoff > d.retry.Max {
			backoff = d.retry.Max
		}
	}
}

func (d *DB) tryTx(ctx context.Context, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := d.DB.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Querier is what both *sqlx.DB and *sqlx.Tx offer; functions that may run
// inside or outside a transaction take it.
type Querier interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

var (
	_ Querier = (*sqlx.DB)(nil)
	_ Querier = (*sqlx.Tx)(nil)
)

// NullString is a convenience for optional text columns.
type NullString = sql.NullString
