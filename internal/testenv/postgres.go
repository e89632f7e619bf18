package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresBinDirEnv overrides where the PostgreSQL server binaries are looked for.
const PostgresBinDirEnv = "CHANCERY_POSTGRES_BIN"

// defaultPostgresBinDir is where Debian's postgresql-15 package puts them.
const defaultPostgresBinDir = "/usr/lib/postgresql/15/bin"

// PostgresServer is a running, throwaway PostgreSQL cluster with trust authentication on
// loopback.
type PostgresServer struct {
	// DSN connects as the superuser "postgres" to the database "postgres".
	DSN  string
	Port int

	proc *process
}

// Output returns the tail of the server's log.
func (p *PostgresServer) Output() string { return p.proc.Output() }

// CreateDatabase creates a fresh database and returns its DSN, so tests sharing one
// server stay independent.
func (p *PostgresServer) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		t.Fatalf("testenv: connect to postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %q: %v", name, err)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, name)
}

// Postgres initialises a PostgreSQL 15 cluster in a temporary directory and starts it on
// a free loopback port; both are removed by t.Cleanup. Running as root, the server runs
// as the "postgres" user (PostgreSQL refuses to run as root). The test is skipped when
// the binaries are missing (failed when CHANCERY_TEST_REQUIRE=all).
func Postgres(t testing.TB) *PostgresServer {
	t.Helper()
	binDir := os.Getenv(PostgresBinDirEnv)
	if binDir == "" {
		binDir = defaultPostgresBinDir
	}
	initdb, postgres := filepath.Join(binDir, "initdb"), filepath.Join(binDir, "postgres")
	for _, bin := range []string{initdb, postgres} {
		if _, err := os.Stat(bin); err != nil {
			missing(t, fmt.Sprintf("PostgreSQL 15 server binary %s not found (install postgresql-15 or set %s)", bin, PostgresBinDirEnv))
		}
	}

	// Not t.TempDir: its parent is private to root, and the server may run as postgres.
	dir, err := os.MkdirTemp("", "chancery-pg-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cred, err := postgresCredential(dir)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		if cred != nil {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatalf("testenv: %v", err)
			}
		}
	}

	initCmd := exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	initCmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initCmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv: initdb failed: %v\n%s", err, out)
	}

	s := &PostgresServer{}
	startWithPortRetry(t, "postgres", func(port int) error {
		s.Port = port
		s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
		cmd := exec.Command(postgres, "-D", data, "-p", strconv.Itoa(port), "-k", sock,
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
			"-c", "full_page_writes=off", "-c", "max_connections=200")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		p, err := start(t, "postgres", cmd, 60*time.Second, func(ctx context.Context) error {
			conn, err := pgx.Connect(ctx, s.DSN)
			if err != nil {
				return err
			}
			return conn.Close(ctx)
		})
		if err != nil {
			return err
		}
		s.proc = p
		return nil
	})
	return s
}

// postgresCredential returns the credential to run PostgreSQL with: nil when not root,
// else the postgres user's, after making dir reachable by it.
func postgresCredential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres user to run PostgreSQL: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
