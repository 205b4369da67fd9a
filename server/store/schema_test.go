package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A database that a newer relay migrated (its goose version above the
// newest migration embedded here) is refused at Open, with both versions and
// the fix in the message; the same database at the embedded version opens.
func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	s, url := newStore(t)
	var newest int64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version_id) FROM goose_db_version`).Scan(&newest); err != nil {
		t.Fatal(err)
	}
	if newest < 1 {
		t.Fatalf("schema version after Open is %d, want the newest migration", newest)
	}
	s.Close()

	// Reopening at the embedded version works (the check does not refuse its own schema).
	s2, err := Open(ctx, url)
	if err != nil {
		t.Fatalf("reopen at version %d: %v", newest, err)
	}
	s2.Close()

	// A newer relay's migration, as goose records it.
	db := rawDB(t, url)
	future := newest + 7
	if _, err := db.ExecContext(ctx, `INSERT INTO goose_db_version (version_id, is_applied, tstamp) VALUES ($1, $2, $3)`,
		future, true, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(ctx, url)
	if err == nil {
		s3.Close()
		t.Fatalf("Open of a database at schema version %d (newest embedded %d) succeeded, want ErrSchemaTooNew", future, newest)
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open: %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{fmt.Sprintf("version %d", future), fmt.Sprintf("up to %d", newest), "restore a backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
