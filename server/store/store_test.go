package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// ts is a fixed, microsecond-precise UTC time used across the tests.
var ts = time.Date(2026, 11, 3, 9, 30, 15, 123456000, time.UTC)

func TestOpenURLForms(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, tc := range []struct {
		name, url string
		wantErr   bool
	}{
		{"plain path", filepath.Join(dir, "a.db"), false},
		{"sqlite: prefix", "sqlite:" + filepath.Join(dir, "b.db"), false},
		{"sqlite:// prefix", "sqlite://" + filepath.Join(dir, "c.db"), false},
		{"odd characters", filepath.Join(dir, "d?x#y%z.db"), false},
		{"empty", "sqlite:", true},
		{"bad postgres URL", "postgres://patchbay:secret@localhost:notaport/patchbay", true},
		{"missing dir", filepath.Join(dir, "nope", "e.db"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.url)
			if tc.wantErr {
				if err == nil {
					s.Close()
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.dialect != dialectSQLite {
				t.Fatalf("dialect %q", s.dialect)
			}
		})
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	s, url := newStore(t)
	if err := s.CreateEnrollToken(ctx, EnrollToken{ID: NewID(), Hash: "h1", CreatedAt: ts}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, auditRec("system", "start")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // migrations are idempotent
		s2, err := Open(ctx, url)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		toks, err := s2.ListEnrollTokens(ctx)
		if err != nil || len(toks) != 1 || toks[0].Hash != "h1" {
			t.Fatalf("reopen %d: tokens %v, %v", i, toks, err)
		}
		if n, err := s2.VerifyAudit(ctx); err != nil || n != 1 {
			t.Fatalf("reopen %d: verify %d, %v", i, n, err)
		}
		s2.Close()
	}
}

// TestTimestampRoundTrip checks the decision documented on the package: TIMESTAMP
// columns written as UTC time.Time come back as equal time.Time values.
func TestTimestampRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	for i, in := range []time.Time{
		ts,
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2030, 6, 30, 23, 59, 59, 999999000, time.UTC),
		time.Date(2026, 3, 1, 12, 0, 0, 5000, time.FixedZone("CET", 3600)),
		time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC), // nanoseconds are truncated
	} {
		tok := APIToken{ID: NewID(), Hash: NewID(), Role: "viewer", CreatedAt: in, ExpiresAt: in.Add(time.Hour)}
		if err := s.CreateAPIToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		got, err := s.LookupAPIToken(ctx, tok.Hash, in)
		if err != nil {
			t.Fatal(err)
		}
		want := in.UTC().Truncate(time.Microsecond)
		if !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC {
			t.Errorf("%d: created %v (%v), want %v", i, got.CreatedAt, got.CreatedAt.Location(), want)
		}
		if !got.ExpiresAt.Equal(want.Add(time.Hour)) || !got.RevokedAt.IsZero() {
			t.Errorf("%d: expires %v revoked %v", i, got.ExpiresAt, got.RevokedAt)
		}
	}
}

func TestEnrollTokens(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	ids := []string{NewID(), NewID(), NewID()}
	for i, id := range ids {
		tok := EnrollToken{
			ID: id, Hash: "hash-" + id, Tags: map[string]string{"site": "paris"}, UsesAllowed: i,
			ExpiresAt: ts.Add(time.Hour), CreatedAt: ts.Add(time.Duration(i) * time.Minute), CreatedBy: "token:admin",
		}
		if i == 0 {
			tok.Tags, tok.ExpiresAt = nil, time.Time{}
		}
		if err := s.CreateEnrollToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateEnrollToken(ctx, EnrollToken{ID: NewID(), Hash: "hash-" + ids[0]}); err == nil {
		t.Fatal("duplicate hash accepted")
	}
	if err := s.CreateEnrollToken(ctx, EnrollToken{Hash: "x"}); err == nil {
		t.Fatal("empty id accepted")
	}
	toks, err := s.ListEnrollTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 3 || toks[0].ID != ids[2] || toks[2].ID != ids[0] {
		t.Fatalf("not newest first: %+v", toks)
	}
	want := EnrollToken{
		ID: ids[1], Hash: "hash-" + ids[1], Tags: map[string]string{"site": "paris"}, UsesAllowed: 1,
		ExpiresAt: ts.Add(time.Hour), CreatedAt: ts.Add(time.Minute), CreatedBy: "token:admin", SiteID: DefaultSiteID,
	}
	if !reflect.DeepEqual(toks[1], want) {
		t.Fatalf("got %+v\nwant %+v", toks[1], want)
	}
	if toks[2].Tags != nil || !toks[2].ExpiresAt.IsZero() {
		t.Fatalf("empty fields: %+v", toks[2])
	}

	if err := s.RevokeEnrollToken(ctx, ids[1], ts.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeEnrollToken(ctx, ids[1], ts.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeEnrollToken(ctx, "nope", ts); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	toks, _ = s.ListEnrollTokens(ctx)
	if !toks[1].RevokedAt.Equal(ts.Add(2*time.Hour)) || !toks[0].RevokedAt.IsZero() {
		t.Fatalf("revoked at %v / %v", toks[1].RevokedAt, toks[0].RevokedAt)
	}
}

func TestAPITokens(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	admin := APIToken{ID: NewID(), Hash: "admin-hash", Role: "admin", Name: "first admin", CreatedAt: ts}
	tech := APIToken{ID: NewID(), Hash: "tech-hash", Role: "technician", Name: "alice", CreatedAt: ts.Add(time.Second), ExpiresAt: ts.Add(time.Hour)}
	for _, tok := range []APIToken{admin, tech} {
		if err := s.CreateAPIToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateAPIToken(ctx, APIToken{ID: NewID(), Hash: "admin-hash", Role: "viewer"}); err == nil {
		t.Fatal("duplicate hash accepted")
	}
	if err := s.RevokeAPIToken(ctx, "nope", ts); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	if err := s.RevokeAPIToken(ctx, admin.ID, ts.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		hash     string
		now      time.Time
		want     *APIToken
		notFound bool
	}{
		{"valid", "tech-hash", ts.Add(time.Minute), &tech, false},
		{"expired", "tech-hash", ts.Add(time.Hour), nil, true},
		{"revoked", "admin-hash", ts, nil, true},
		{"unknown", "other", ts, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.LookupAPIToken(ctx, tc.hash, tc.now)
			if tc.notFound {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, *tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, *tc.want)
			}
		})
	}

	list, err := s.ListAPITokens(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if list[0].ID != tech.ID || !list[1].RevokedAt.Equal(ts.Add(time.Minute)) {
		t.Fatalf("list: %+v", list)
	}
}

// Every pooled SQLite connection runs with the relay's pragmas, the page
// cache included (a connection opened later by the pool too).
func TestSQLitePragmas(t *testing.T) {
	s, _ := newSQLiteStore(t)
	ctx := context.Background()
	conns := make([]*sql.Conn, maxOpenConns)
	for i := range conns {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		for pragma, want := range map[string]string{
			"cache_size":   strconv.Itoa(-sqliteCacheKiB),
			"journal_mode": "wal",
			"foreign_keys": "1",
			"synchronous":  "1", // NORMAL
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("connection %d: PRAGMA %s = %s, want %s", i, pragma, got, want)
			}
		}
	}
}
