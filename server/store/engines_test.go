package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/patchbay/patchbay/internal/pgtest"
)

// Every test of this package runs on both engines: TestMain runs the whole set once
// with newStore opening SQLite and once with it opening PostgreSQL (a fresh database
// on one server started for the package, or on PATCHBAY_TEST_POSTGRES). A new test
// that opens its store with newStore is covered on both without doing anything.
// PATCHBAY_STORE_ENGINES=postgres (or sqlite) runs one pass only, for a quick look.

// pg is the package's PostgreSQL, started by the first test that needs it.
var pg = pgtest.New()

// engine is the engine newStore opens in the current pass.
var engine = dialectSQLite

func TestMain(m *testing.M) {
	engines := []dialect{dialectSQLite, dialectPostgres}
	if env := os.Getenv("PATCHBAY_STORE_ENGINES"); env != "" {
		engines = nil
		for _, e := range strings.Split(env, ",") {
			engines = append(engines, dialect(strings.TrimSpace(e)))
		}
	}
	code := 0
	for _, e := range engines {
		if e != dialectSQLite && e != dialectPostgres {
			fmt.Fprintf(os.Stderr, "PATCHBAY_STORE_ENGINES: unknown engine %q: use sqlite, postgres or both\n", e)
			os.Exit(2)
		}
		engine = e
		fmt.Printf("=== store tests on %s\n", e)
		if c := m.Run(); c != 0 {
			code = c
		}
	}
	if err := pg.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "stop the tests' postgresql: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// newStore opens a fresh store on the current pass's engine. It returns the URL
// the store was opened with, for reopening it (Open) or reaching behind its back
// (rawDB).
func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	if engine == dialectSQLite {
		return newSQLiteStore(t)
	}
	url := pg.NewDB(t)
	return openTestStore(t, url), url
}

// newSQLiteStore opens a fresh SQLite store in a temporary directory, whatever the
// pass, for the tests of SQLite itself (pragmas, query plans).
func newSQLiteStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.db")
	return openTestStore(t, path), path
}

func openTestStore(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("engine: %s", s.dialect) // the test names are the same in both passes
		}
	})
	return s
}

// rawDB opens the store's database behind its back, as an attacker or an operator would.
func rawDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	var db *sql.DB
	if strings.HasPrefix(url, "postgres://") {
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		db = stdlib.OpenDB(*cfg)
	} else {
		var err error
		if db, err = sql.Open("sqlite", "file:"+url+"?_pragma=busy_timeout(5000)"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { db.Close() })
	return db
}
