package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// Driver names a database engine.
type Driver string

// The supported engines.
const (
	SQLite   Driver = "sqlite"
	Postgres Driver = "postgres"
)

// Config says which database to use; it is the `store:` section of the configuration.
type Config struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver Driver `yaml:"driver"`
	// Path is the SQLite file; relative paths are under the state directory. Default
	// "chancery.db".
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string (URL or key=value form). It may carry a
	// password: it is never logged.
	DSN string `yaml:"dsn"`
	// MaxConns bounds the connection pool (default 10 for PostgreSQL).
	MaxConns int `yaml:"max_conns"`
}

// String describes the configuration without the DSN, which may hold a password.
func (c Config) String() string {
	if c.Driver == Postgres {
		if pc, err := pgx.ParseConfig(c.DSN); err == nil {
			return "postgres " + redactDSN(pc)
		}
		return "postgres (invalid dsn)"
	}
	return "sqlite " + c.Path
}

// LogValue implements slog.LogValuer with String's redaction.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Validate reports every problem in the section, each naming its key.
func (c Config) Validate() error {
	var errs []error
	switch c.Driver {
	case "", SQLite:
		if c.DSN != "" {
			errs = append(errs, errors.New("store.dsn: only used with driver postgres"))
		}
	case Postgres:
		if c.DSN == "" {
			errs = append(errs, errors.New("store.dsn: required with driver postgres"))
		} else if _, err := pgx.ParseConfig(c.DSN); err != nil {
			// pgx's error may quote the DSN; say only that it is malformed.
			errs = append(errs, errors.New("store.dsn: not a valid PostgreSQL connection string"))
		}
		if c.Path != "" {
			errs = append(errs, errors.New("store.path: only used with driver sqlite"))
		}
	default:
		errs = append(errs, fmt.Errorf("store.driver: %q is not sqlite or postgres", c.Driver))
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("store.max_conns: must not be negative, got %d", c.MaxConns))
	}
	return errors.Join(errs...)
}

// DB is an open database.
type DB struct {
	*sql.DB
	driver Driver
	dsn    string // PostgreSQL only, for the LISTEN connection

	mu     sync.Mutex
	subs   map[string][]chan string // SQLite's in-process notifications
	closed bool
	log    *slog.Logger
}

// SetLogger sets where the database reports trouble that no caller sees, such as a
// lost LISTEN connection; the default discards it.
func (db *DB) SetLogger(l *slog.Logger) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.log = l
}

func (db *DB) logger() *slog.Logger {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return db.log
}

// Open opens (creating, for SQLite) the database described by cfg. stateDir anchors a
// relative SQLite path. It checks the connection before returning.
func Open(ctx context.Context, cfg Config, stateDir string) (*DB, error) {
	db := &DB{driver: cfg.Driver, subs: map[string][]chan string{}}
	switch cfg.Driver {
	case "", SQLite:
		db.driver = SQLite
		path := cfg.Path
		if path == "" {
			path = "chancery.db"
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(stateDir, path)
		}
		// WAL lets readers run beside the writer; IMMEDIATE transactions take the write
		// lock up front so two writers wait (busy_timeout) instead of deadlocking.
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Set("_txlock", "immediate")
		sqlDB, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		sqlDB.SetMaxOpenConns(max(cfg.MaxConns, 4))
		db.DB = sqlDB
		if err := db.PingContext(ctx); err != nil {
			sqlDB.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	case Postgres:
		pcfg, err := pgx.ParseConfig(cfg.DSN)
		if err != nil {
			return nil, errors.New("open postgres: not a valid connection string")
		}
		db.dsn = cfg.DSN
		sqlDB := stdlib.OpenDB(*pcfg)
		n := cfg.MaxConns
		if n == 0 {
			n = 10
		}
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		db.DB = sqlDB
		if err := db.PingContext(ctx); err != nil {
			sqlDB.Close()
			return nil, fmt.Errorf("open postgres %s: %w", redactDSN(pcfg), err)
		}
	default:
		return nil, fmt.Errorf("store: unknown driver %q", cfg.Driver)
	}
	return db, nil
}

// redactDSN names a PostgreSQL server without its credentials.
func redactDSN(c *pgx.ConnConfig) string {
	return c.User + "@" + c.Host + ":" + strconv.Itoa(int(c.Port)) + "/" + c.Database
}

// Driver returns the engine in use.
func (db *DB) Driver() Driver { return db.driver }

// Rebind rewrites '?' placeholders for the engine in use. Queries must not contain a
// literal '?' outside placeholders.
func (db *DB) Rebind(query string) string {
	if db.driver != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// IsUniqueViolation reports whether err is a unique or primary key constraint failure.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// NowMillis is an SQL expression for the database's clock in Unix milliseconds. Rows
// that replicas compare by time (updated_at) are stamped with it, so one clock orders
// every change, whichever host wrote it.
func (db *DB) NowMillis() string {
	if db.driver == Postgres {
		return "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
	}
	return "CAST(unixepoch('subsec') * 1000 AS INTEGER)"
}

// Now returns the database's clock, as NowMillis stamps it.
func (db *DB) Now(ctx context.Context) (time.Time, error) {
	var ms int64
	if err := db.QueryRowContext(ctx, "SELECT "+db.NowMillis()).Scan(&ms); err != nil {
		return time.Time{}, fmt.Errorf("read the database clock: %w", err)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// InTx runs fn in a transaction, committing if it returns nil and rolling back
// otherwise.
func (db *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Close closes the database and ends every subscription.
func (db *DB) Close() error {
	db.mu.Lock()
	if !db.closed {
		db.closed = true
		for _, chans := range db.subs {
			for _, ch := range chans {
				close(ch)
			}
		}
		db.subs = nil
	}
	db.mu.Unlock()
	return db.DB.Close()
}
