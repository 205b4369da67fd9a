package store

import (
	"context"
	"log/slog"
	"testing"
)

// Migration 00030 marks the secrets stored before it as plain (the relay
// seals them at start, sealed_test.go) and its Down makes them bare again.
func TestMigrationMarksPlainSecrets(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	p := migrationProvider(t, s)
	if _, err := p.DownTo(ctx, 29); err != nil {
		t.Fatalf("down to before 00030: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO alert_routes (id, site_id, min_severity, kind, target, secret, created_at) VALUES ('r1', '*', 'info', 'webhook', 'https://x', 'hmac-old', $1)`,
		`INSERT INTO alert_routes (id, site_id, min_severity, kind, target, secret, created_at) VALUES ('r2', '*', 'info', 'webhook', 'https://y', '', $1)`,
		`INSERT INTO users (id, name, role, totp_secret, totp_pending, source, created_at, updated_at) VALUES ('u1', 'alice', 'admin', 'TOTPOLD', 'PENDOLD', 'local', $1, $1)`,
	} {
		if _, err := s.db.ExecContext(ctx, q, dbTime(ts)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	stored := func() []string {
		var a, b, c, d string
		if err := s.db.QueryRowContext(ctx, `SELECT r1.secret, r2.secret, u.totp_secret, u.totp_pending
			FROM alert_routes r1, alert_routes r2, users u WHERE r1.id = 'r1' AND r2.id = 'r2' AND u.id = 'u1'`).Scan(&a, &b, &c, &d); err != nil {
			t.Fatal(err)
		}
		return []string{a, b, c, d}
	}
	if err := s.migrate(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("up: %v", err)
	}
	if got, want := stored(), []string{"plain:hmac-old", "", "plain:TOTPOLD", "plain:PENDOLD"}; !equalStrings(got, want) {
		t.Fatalf("after 00030: %q, want %q", got, want)
	}
	if r, err := s.ListAlertRoutes(ctx); err != nil || len(r) != 2 || r[0].Secret != "hmac-old" || r[1].Secret != "" {
		t.Fatalf("routes after 00030: %+v, %v", r, err)
	}
	if u, err := s.GetUser(ctx, "u1"); err != nil || u.TOTPSecret != "TOTPOLD" || u.TOTPPending != "PENDOLD" {
		t.Fatalf("user after 00030: %+v, %v", u, err)
	}
	if _, err := p.DownTo(ctx, 29); err != nil {
		t.Fatalf("down again: %v", err)
	}
	if got, want := stored(), []string{"hmac-old", "", "TOTPOLD", "PENDOLD"}; !equalStrings(got, want) {
		t.Fatalf("after 00030's Down: %q, want %q", got, want)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
