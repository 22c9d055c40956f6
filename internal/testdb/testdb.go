// Package testdb gives tests a fresh, migrated database of each dialect the
// machine offers: always SQLite (in t.TempDir), and MariaDB/MySQL when
// DYNAMO_TEST_MYSQL_DSN names a server (mysql://root@127.0.0.1:3307/any: the
// database part is replaced by a new database per test). With CI=true an
// unset DYNAMO_TEST_MYSQL_DSN fails the test instead of skipping it, so CI
// can never pass by silently not testing MariaDB.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynamo-go/dynamo/internal/db"
)

// EnvMySQL names the environment variable with the MariaDB server for tests.
const EnvMySQL = "DYNAMO_TEST_MYSQL_DSN"

// SQLite returns a migrated SQLite database in a temporary directory.
func SQLite(t testing.TB) *db.DB {
	t.Helper()
	return open(t, "sqlite:"+filepath.Join(t.TempDir(), "test.db"))
}

// MySQL returns a migrated database on the test MariaDB server, created for
// this test and dropped after it. It skips the test when no server is
// configured, unless CI=true, where it fails.
func MySQL(t testing.TB) *db.DB {
	t.Helper()
	dsn := MySQLDSN(t)
	return open(t, dsn)
}

// MySQLDSN creates a new empty database on the test server and returns its
// DSN; the database is dropped when the test ends. Use it to open the same
// database from two processes.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvMySQL)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set and CI=true: the MariaDB tests must run (start one with scripts/mariadb.sh)", EnvMySQL)
		}
		t.Skipf("%s not set: skipping the MariaDB variant (make test starts a server)", EnvMySQL)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvMySQL, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "dynamo_t_" + hex.EncodeToString(b[:])
	admin, err := db.Open(context.Background(), base)
	if err != nil {
		t.Fatalf("test MariaDB: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("test MariaDB: %v", err)
	}
	t.Cleanup(func() {
		admin, err := db.Open(context.Background(), base)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name)
	})
	u.Path = "/" + name
	return u.String()
}

func open(t testing.TB, dsn string) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", d.Name, err)
	}
	return d
}

// Each runs fn as a subtest once per dialect: "sqlite" and "mysql".
func Each(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("mysql", func(t *testing.T) { fn(t, MySQL(t)) })
}

// Name returns a short description for messages.
func Name(d *db.DB) string { return fmt.Sprintf("%s(%s)", d.Dialect, d.Name) }
