package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chancery/chancery/internal/testenv"
	"github.com/chancery/chancery/store"
	"github.com/chancery/chancery/store/storetest"
)

var widgets = []store.Migration{
	{Version: 1, Name: "widgets", SQLite: `CREATE TABLE widgets (id TEXT PRIMARY KEY, n BIGINT NOT NULL)`},
	{Version: 2, Name: "widget color", SQLite: `ALTER TABLE widgets ADD COLUMN color TEXT NOT NULL DEFAULT ''`},
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMigrateAndQuery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := ctxT(t)
		if err := db.Migrate(ctx, "widgets", widgets[:1]); err != nil {
			t.Fatal(err)
		}
		if v, err := db.SchemaVersion(ctx, "widgets"); err != nil || v != 1 {
			t.Fatalf("version = %d, %v; want 1", v, err)
		}
		// Re-running applies only what is new, and is idempotent.
		for range 2 {
			if err := db.Migrate(ctx, "widgets", widgets); err != nil {
				t.Fatal(err)
			}
		}
		if v, _ := db.SchemaVersion(ctx, "widgets"); v != 2 {
			t.Fatalf("version = %d, want 2", v)
		}
		if v, _ := db.SchemaVersion(ctx, "other"); v != 0 {
			t.Fatalf("unknown component version = %d, want 0", v)
		}

		if _, err := db.ExecContext(ctx, db.Rebind("INSERT INTO widgets (id, n, color) VALUES (?, ?, ?)"), "a", 1, "red"); err != nil {
			t.Fatal(err)
		}
		_, err := db.ExecContext(ctx, db.Rebind("INSERT INTO widgets (id, n) VALUES (?, ?)"), "a", 2)
		if !store.IsUniqueViolation(err) {
			t.Fatalf("duplicate key: err = %v, want a unique violation", err)
		}
		// A failed transaction leaves nothing behind.
		boom := errors.New("boom")
		err = db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO widgets (id, n) VALUES (?, ?)"), "b", 3); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v", err)
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM widgets").Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows = %d, %v; want 1 after the rolled-back insert", n, err)
		}
	})
}

func TestMigrateRefusesGaps(t *testing.T) {
	db := storetest.SQLite(t)
	err := db.Migrate(ctxT(t), "bad", []store.Migration{{Version: 2, Name: "x", SQLite: "SELECT 1"}})
	if err == nil || !strings.Contains(err.Error(), "want 1") {
		t.Fatalf("err = %v", err)
	}
	err = db.Migrate(ctxT(t), "broken", []store.Migration{{Version: 1, Name: "typo", SQLite: "CREATE TABEL x (a INT)"}})
	if err == nil || !strings.Contains(err.Error(), "migrate broken to version 1 (typo)") {
		t.Fatalf("err = %v", err)
	}
	if v, _ := db.SchemaVersion(ctxT(t), "broken"); v != 0 {
		t.Fatalf("a failed migration was recorded (version %d)", v)
	}
}

// TestConcurrentReplicasMigrateOnce starts several replicas' migrations at once on one
// PostgreSQL database: each step must be applied exactly once.
func TestConcurrentReplicasMigrateOnce(t *testing.T) {
	pg := testenv.Postgres(t)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		db := storetest.OpenPostgres(t, pg, "shared")
		wg.Go(func() { errs <- db.Migrate(ctx, "widgets", widgets) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	db := storetest.OpenPostgres(t, pg, "shared")
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE component = 'widgets'").Scan(&n); err != nil || n != 2 {
		t.Fatalf("migration rows = %d, %v; want 2", n, err)
	}
}

func receive(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case p, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
	}
	return ""
}

func TestNotifySubscribe(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(ctxT(t))
		sub, err := db.Subscribe(ctx, "widgets")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Notify(ctx, "widgets", "changed:a"); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, sub); got != "changed:a" {
			t.Fatalf("payload %q", got)
		}
		cancel()
		select {
		case _, ok := <-sub:
			for ok {
				_, ok = <-sub
			}
		case <-time.After(10 * time.Second):
			t.Fatal("subscription not closed after its context ended")
		}
	})
}

// TestNotifyReachesOtherReplicas: a NOTIFY from one handle reaches a LISTEN on another,
// and a killed listener connection reconnects and says Resync.
func TestNotifyReachesOtherReplicas(t *testing.T) {
	pg := testenv.Postgres(t)
	ctx := ctxT(t)
	a, b := storetest.OpenPostgres(t, pg, "replicas"), storetest.OpenPostgres(t, pg, "replicas")
	var logs testenv.Buffer
	b.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	sub, err := b.Subscribe(ctx, "keys")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Notify(ctx, "keys", "revoked:k1"); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, sub); got != "revoked:k1" {
		t.Fatalf("payload %q", got)
	}
	// Kill every LISTENing backend: the subscription must come back and say Resync.
	if _, err := a.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, sub); got != store.Resync {
		t.Fatalf("after the listener was killed: %q, want Resync", got)
	}
	if l := logs.String(); !strings.Contains(l, "LISTEN connection lost") || !strings.Contains(l, "LISTEN connection restored") {
		t.Errorf("reconnect not logged:\n%s", l)
	}
	if err := a.Notify(ctx, "keys", "revoked:k2"); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, sub); got != "revoked:k2" {
		t.Fatalf("after reconnect: %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  store.Config
		want string
	}{
		{store.Config{}, ""},
		{store.Config{Driver: "sqlite", Path: "/var/lib/chancery/db"}, ""},
		{store.Config{Driver: "postgres", DSN: "postgres://u:p@db:5432/chancery"}, ""},
		{store.Config{Driver: "postgres"}, "store.dsn: required"},
		{store.Config{Driver: "postgres", DSN: "postgres://u:secretpw@db:notaport/x"}, "store.dsn: not a valid"},
		{store.Config{Driver: "mysql"}, `store.driver: "mysql"`},
		{store.Config{DSN: "x"}, "store.dsn: only used with driver postgres"},
		{store.Config{MaxConns: -1}, "store.max_conns"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: err = %v, want %q", tt.cfg, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("validation error leaks the DSN password: %v", err)
		}
	}
}

func TestOpenUnreachablePostgresHidesPassword(t *testing.T) {
	port := testenv.FreePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := store.Open(ctx, store.Config{Driver: store.Postgres,
		DSN: "postgres://app:secretpw@127.0.0.1:" + strconv.Itoa(port) + "/db?sslmode=disable&connect_timeout=2"}, "")
	if err == nil || strings.Contains(err.Error(), "secretpw") || !strings.Contains(err.Error(), "app@127.0.0.1") {
		t.Fatalf("err = %v, want a connection error naming the server and not the password", err)
	}
}

func TestDatabaseClock(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := ctxT(t)
		before := time.Now().Add(-time.Second)
		got, err := db.Now(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Same host, so the database clock is this clock, to within rounding.
		if got.Before(before) || got.After(time.Now().Add(time.Second)) {
			t.Fatalf("database clock %s, local clock %s", got, time.Now())
		}
		if err := db.Migrate(ctx, "stamped", []store.Migration{{Version: 1, Name: "t",
			SQLite: "CREATE TABLE stamped (id TEXT PRIMARY KEY, at BIGINT NOT NULL)"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, db.Rebind("INSERT INTO stamped (id, at) VALUES (?, "+db.NowMillis()+")"), "a"); err != nil {
			t.Fatal(err)
		}
		var at int64
		if err := db.QueryRowContext(ctx, "SELECT at FROM stamped").Scan(&at); err != nil {
			t.Fatal(err)
		}
		if d := time.UnixMilli(at).Sub(got); d < 0 || d > 10*time.Second {
			t.Fatalf("row stamped %s after the clock read", d)
		}
	})
}

func TestConfigStringHidesPassword(t *testing.T) {
	c := store.Config{Driver: store.Postgres, DSN: "postgres://app:secretpw@db.internal:5432/chancery"}
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%+v", c), c.LogValue().String()} {
		if strings.Contains(s, "secretpw") || !strings.Contains(s, "app@db.internal:5432/chancery") {
			t.Errorf("%q", s)
		}
	}
}
