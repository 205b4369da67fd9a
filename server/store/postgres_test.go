package store

import (
	"context"
	"io/fs"
	"log/slog"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"
)

// The tests of this file are about the engines themselves: the PostgreSQL
// ones open their own databases on the package's server and run in the
// postgres pass only.

func TestPostgresURLForms(t *testing.T) {
	if engine != dialectPostgres {
		return // runs in the postgres pass
	}
	ctx := context.Background()
	url := pg.NewDB(t)
	for _, u := range []string{url, "postgresql://" + strings.TrimPrefix(url, "postgres://")} {
		s, err := Open(ctx, u)
		if err != nil {
			t.Fatalf("open %s: %v", u, err)
		}
		if s.dialect != dialectPostgres {
			t.Errorf("%s: dialect %q", u, s.dialect)
		}
		s.Close()
	}
	// A URL that does not parse is refused without quoting it (it may hold a password).
	if _, err := Open(ctx, "postgres://patchbay:s3cret@localhost:notaport/patchbay"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad URL: %v", err)
	}
	// A database that does not exist: a clear error, no store.
	missing := url[:strings.LastIndex(url, "/")] + "/no_such_database"
	if s, err := Open(ctx, missing); err == nil {
		s.Close()
		t.Fatal("opened a database that does not exist")
	} else if !strings.Contains(err.Error(), "open store: connect") {
		t.Fatalf("missing database: %v", err)
	}
}

// Relays started at once on an empty database migrate it once: goose's
// session locker serialises them, and the ones that wait find nothing to do.
func TestPostgresConcurrentMigration(t *testing.T) {
	if engine != dialectPostgres {
		return // runs in the postgres pass
	}
	ctx := context.Background()
	url := pg.NewDB(t)
	stores := make([]*Store, 4)
	for _, err := range race(len(stores), func(i int) error {
		var err error
		stores[i], err = Open(ctx, url)
		return err
	}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range stores {
		defer s.Close()
	}
	db := rawDB(t, url)
	rows, err := db.QueryContext(ctx, `SELECT version_id, COUNT(*) FROM goose_db_version GROUP BY version_id ORDER BY version_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions int64
	for rows.Next() {
		var v, n int64
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("version %d applied %d times", v, n)
		}
		versions = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	migs, _ := migrationFS.ReadDir("migrations")
	if versions != int64(len(migs)) {
		t.Fatalf("last version %d, want %d", versions, len(migs))
	}
	// Every store works.
	for i, s := range stores {
		if err := s.SetSetting(ctx, "probe", "x", ts); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
}

// Every migration's Down undoes its Up on both engines: down to nothing and up
// again leaves a working store.
func TestMigrationsDownAndUp(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	p := migrationProvider(t, s)
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	if err := s.migrate(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if err := s.SetSetting(ctx, "probe", "x", ts); err != nil {
		t.Fatal(err)
	}
}

// migrationProvider is a goose provider of the embedded migrations on s's
// database, for tests that migrate down and up.
func migrationProvider(t *testing.T, s *Store) *goose.Provider {
	t.Helper()
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	gd := goose.DialectSQLite3
	if s.dialect == dialectPostgres {
		gd = goose.DialectPostgres
	}
	p, err := goose.NewProvider(gd, s.db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
