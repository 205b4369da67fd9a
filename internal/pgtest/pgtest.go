// Package pgtest gives tests a real PostgreSQL: one server per test binary, started
// with initdb and pg_ctl in a temporary directory on the first use, and a fresh database
// for each test that asks for one.
//
// Use it from TestMain, so the server is stopped when the package's tests end:
//
//	var pg = pgtest.New()
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pg.Close()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) {
//		url := pg.NewDB(t) // postgres://…/pgtest_N, dropped when t ends
//		…
//	}
//
// With PATCHBAY_TEST_POSTGRES set to a server's URL (a superuser, or a role with
// CREATEDB), the tests use that server instead of starting one. Otherwise the server's
// binaries come from the Debian package postgresql: initdb is looked up in PATH and then
// in /usr/lib/postgresql/*/bin. When the binaries are missing, NewDB fails the test and
// names the package; it never skips. As root, the server runs as the postgres user
// (initdb refuses to run as root).
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// EnvURL names the environment variable that points the tests at an existing server.
const EnvURL = "PATCHBAY_TEST_POSTGRES"

// Server is a PostgreSQL for one test binary. Its zero value is not usable: call New.
type Server struct {
	mu      sync.Mutex
	started bool
	err     error    // why the server could not be started (reported by every NewDB)
	base    *url.URL // the admin URL; databases differ by path
	admin   *sql.DB
	dir     string   // temp dir of a server we started ("" for PATCHBAY_TEST_POSTGRES)
	pgCtl   []string // pg_ctl, with runuser in front when root
	n       int      // databases created so far
	prefix  string   // database names: prefix + n
}

// New returns a Server that starts on the first NewDB. Call Close when the tests end.
func New() *Server {
	return &Server{prefix: fmt.Sprintf("pgtest_%d_", os.Getpid())}
}

// NewDB creates an empty database for tb and returns its URL. The database is dropped
// when tb ends (after tb's own clean-ups registered later, such as closing a store).
func (s *Server) NewDB(tb testing.TB) string {
	tb.Helper()
	s.mu.Lock()
	if !s.started {
		s.started = true
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // initdb, start
		s.err = s.start(ctx)
		cancel()
	}
	if s.err != nil {
		s.mu.Unlock()
		tb.Fatalf("postgresql for tests: %v", s.err)
	}
	s.n++
	name := s.prefix + strconv.Itoa(s.n)
	admin, base := s.admin, *s.base
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		tb.Fatalf("postgresql for tests: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Errorf("postgresql for tests: drop database %s: %v", name, err)
		}
	})
	base.Path = "/" + name
	return base.String()
}

// Close stops the server if this Server started it, and removes its directory. It
// is safe to call when no test used the server.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.admin != nil {
		errs = append(errs, s.admin.Close())
		s.admin = nil
	}
	if s.dir != "" {
		errs = append(errs, s.stop())
		errs = append(errs, os.RemoveAll(s.dir))
		s.dir = ""
	}
	return errors.Join(errs...)
}

func (s *Server) start(ctx context.Context) error {
	raw := os.Getenv(EnvURL)
	if raw == "" {
		var err error
		if raw, err = s.startServer(ctx); err != nil {
			return err
		}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("%s: want a postgres://USER@HOST:PORT/DB URL", EnvURL)
	}
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", EnvURL, err)
	}
	s.base = u
	s.admin = stdlib.OpenDB(*cfg)
	s.admin.SetMaxOpenConns(2)
	if err := s.admin.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	return nil
}

// startServer runs initdb and pg_ctl start in a new temp dir and returns the admin URL.
func (s *Server) startServer(ctx context.Context) (string, error) {
	initdb, err := findInitdb(debianInitdb)
	if err != nil {
		return "", err
	}
	bin := filepath.Dir(initdb)
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return "", fmt.Errorf("temp dir: %w", err)
	}
	s.dir = dir
	var asUser []string // command prefix that runs the server's tools as postgres
	if os.Geteuid() == 0 {
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			return "", errors.New("running as root needs runuser to start PostgreSQL as the postgres user: install the Debian package util-linux")
		}
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", errors.New("running as root needs the postgres user to start PostgreSQL: install the Debian package postgresql, which creates it")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", fmt.Errorf("chown %s to postgres: %w", dir, err)
		}
		asUser = []string{runuser, "-u", "postgres", "--"}
	}
	data := filepath.Join(dir, "data")
	out, err := run(ctx, asUser, initdb, "-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
	if err != nil {
		return "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	// fsync and full-page writes off: a test server's data need not survive a crash.
	// Listens on 127.0.0.1 only, with its unix socket in the temp dir.
	s.pgCtl = append(asUser, filepath.Join(bin, "pg_ctl"), "-D", data)
	opts := fmt.Sprintf("-p %d -h 127.0.0.1 -k %s -c fsync=off -c full_page_writes=off"+
		" -c synchronous_commit=off -c max_connections=200", port, dir)
	out, err = run(ctx, s.pgCtl, "-w", "-t", "60", "-l", filepath.Join(dir, "postgres.log"), "-o", opts, "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		return "", fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), nil
}

// stop stops a server started by startServer (immediate: its data is thrown away).
func (s *Server) stop() error {
	if s.pgCtl == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := run(ctx, s.pgCtl, "-w", "-m", "immediate", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	s.pgCtl = nil
	return nil
}

// debianInitdb is where Debian's postgresql package puts initdb (not in PATH).
const debianInitdb = "/usr/lib/postgresql/*/bin/initdb"

// findInitdb looks for initdb in PATH, then in the newest of glob's matches.
func findInitdb(glob string) (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob(glob)
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, p := range dirs {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "pg_ctl")); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("initdb not found in PATH or /usr/lib/postgresql/*/bin: install the Debian package postgresql (or set %s to a server's URL)", EnvURL)
}

// version is the major version in /usr/lib/postgresql/VERSION/bin/initdb.
func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// run runs prefix followed by args, in "/" (a directory the postgres user can read,
// unlike the test's working directory under /root), and returns its output.
func run(ctx context.Context, prefix []string, args ...string) ([]byte, error) {
	argv := append(append([]string{}, prefix...), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = "/"
	return cmd.CombinedOutput()
}
