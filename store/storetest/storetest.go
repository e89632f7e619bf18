// Package storetest runs a capability's storage tests against every engine the store
// supports: a fresh SQLite file and a fresh database on a real PostgreSQL 15 server.
package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chancery/chancery/internal/testenv"
	"github.com/chancery/chancery/store"
)

// Each runs fn once per engine, as subtests named "sqlite" and "postgres". The
// PostgreSQL subtest is skipped (failed under CHANCERY_TEST_REQUIRE=all) without a server.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) {
		pg := testenv.Postgres(t)
		fn(t, OpenPostgres(t, pg, "db"))
	})
}

// SQLite opens a fresh SQLite database in a temporary directory.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	return open(t, store.Config{Driver: store.SQLite}, t.TempDir())
}

// OpenPostgres creates database name on pg (if it does not exist yet) and opens it.
// Several calls with one name give several handles on one database, as replicas have.
func OpenPostgres(t testing.TB, pg *testenv.PostgresServer, name string) *store.DB {
	t.Helper()
	name = strings.ToLower(name)
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.Port, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := open(t, store.Config{Driver: store.Postgres, DSN: pg.DSN}, "")
	var exists bool
	if err := admin.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil && !store.IsUniqueViolation(err) {
			t.Fatalf("create database %s: %v", name, err)
		}
	}
	return open(t, store.Config{Driver: store.Postgres, DSN: dsn}, "")
}

func open(t testing.TB, cfg store.Config, stateDir string) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, cfg, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
