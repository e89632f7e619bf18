package store

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"time"
)

// A Migration is one step of a capability's schema. Versions start at 1 and increase
// by one; a released migration never changes. Postgres may differ from SQLite where the
// dialects do; empty means "same as SQLite".
type Migration struct {
	Version  int
	Name     string
	SQLite   string
	Postgres string
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	component  TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	applied_at BIGINT  NOT NULL,
	PRIMARY KEY (component, version)
)`

// Migrate applies the migrations of component that the database does not have yet, each
// in its own transaction. Several replicas may start at once: on PostgreSQL an advisory
// lock per component serialises them, on SQLite the write lock does.
func (db *DB) Migrate(ctx context.Context, component string, migrations []Migration) error {
	for i, m := range migrations {
		if m.Version != i+1 {
			return fmt.Errorf("migrate %s: migration %d (%s) has version %d, want %d", component, i, m.Name, m.Version, i+1)
		}
	}
	// Replicas starting together would race on CREATE TABLE IF NOT EXISTS itself in
	// PostgreSQL's catalog; one lock for all migrations serialises them.
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		if err := db.lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, createMigrationsTable)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate %s: create schema_migrations: %w", component, err)
	}
	for _, m := range migrations {
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			if err := db.lockMigrations(ctx, tx); err != nil {
				return err
			}
			var applied int
			err := tx.QueryRowContext(ctx, db.Rebind(
				"SELECT COUNT(*) FROM schema_migrations WHERE component = ? AND version = ?"), component, m.Version).Scan(&applied)
			if err != nil || applied > 0 {
				return err
			}
			stmt := m.SQLite
			if db.driver == Postgres && m.Postgres != "" {
				stmt = m.Postgres
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, db.Rebind(
				"INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)"),
				component, m.Version, m.Name, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s to version %d (%s): %w", component, m.Version, m.Name, err)
		}
	}
	return nil
}

// lockMigrations takes, on PostgreSQL, a transaction-scoped advisory lock that every
// replica's migrations share. SQLite's IMMEDIATE transactions already serialise them.
func (db *DB) lockMigrations(ctx context.Context, tx *sql.Tx) error {
	if db.driver != Postgres {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte("chancery-migrate"))
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64()))
	return err
}

// SchemaVersion returns the highest migration version applied for component (0: none).
func (db *DB) SchemaVersion(ctx context.Context, component string) (int, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, db.Rebind("SELECT MAX(version) FROM schema_migrations WHERE component = ?"), component).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("schema version of %s: %w", component, err)
	}
	return int(v.Int64), nil
}
