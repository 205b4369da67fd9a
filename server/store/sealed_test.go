package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/server/store"
	"github.com/patchbay/patchbay/server/tiersecrets"
)

func newKey(t *testing.T) *tiersecrets.Key {
	t.Helper()
	text, err := tiersecrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := tiersecrets.ParseKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The secrets written through the store, as the relay stores them.
const (
	hmacKey     = "hmac-key-5f0e8a1c"
	smtpPass    = "smtp-password-7b2d"
	totpKey     = "JBSWY3DPEHPK3PXPJBSWY3DP"
	totpEnrolls = "GEZDGNBVGY3TQOJQGEZDGNBV"
)

var at = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// writeSecrets stores a webhook and an SMTP route, a user with TOTP and one
// enrolling, and returns their IDs.
func writeSecrets(t *testing.T, s *store.Store) (hook, mail, alice, bob string) {
	t.Helper()
	ctx := context.Background()
	h, err := s.CreateAlertRoute(ctx, store.AlertRoute{SiteID: store.AllSites, MinSeverity: "warning", Kind: store.RouteWebhook,
		Target: "https://hooks.example.com/x", Secret: hmacKey}, at)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.CreateAlertRoute(ctx, store.AlertRoute{SiteID: store.AllSites, MinSeverity: "critical", Kind: store.RouteSMTP,
		Target: "smtp://mail.example.com:587", Secret: smtpPass, User: "relay", From: "relay@example.com", To: []string{"ops@example.com"}}, at)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob = store.NewID(), store.NewID()
	if err := s.CreateUser(ctx, store.User{ID: alice, Name: "alice", Role: "admin", TOTPSecret: totpKey, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, store.User{ID: bob, Name: "bob", Role: "viewer", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserTOTPPending(ctx, bob, totpEnrolls, at); err != nil {
		t.Fatal(err)
	}
	return h.ID, m.ID, alice, bob
}

// rawSecrets returns every stored secret, as in the database.
func rawSecrets(t *testing.T, url string) []string {
	t.Helper()
	db := store.RawTestDB(t, url)
	var out []string
	for _, q := range []string{`SELECT secret FROM alert_routes WHERE secret <> ''`,
		`SELECT totp_secret FROM users WHERE totp_secret <> ''`, `SELECT totp_pending FROM users WHERE totp_pending <> ''`} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		rows.Close()
	}
	return out
}

// checkPlainAPI checks that the store's API gives the secrets back in plain text.
func checkPlainAPI(t *testing.T, s *store.Store, alice, bob string) {
	t.Helper()
	ctx := context.Background()
	routes, err := s.ListAlertRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range routes {
		got[r.Kind] = r.Secret
	}
	if got[store.RouteWebhook] != hmacKey || got[store.RouteSMTP] != smtpPass {
		t.Fatalf("routes' secrets read back as %q", got)
	}
	if u, err := s.GetUser(ctx, alice); err != nil || u.TOTPSecret != totpKey {
		t.Fatalf("alice's TOTP secret: %q, %v", u.TOTPSecret, err)
	}
	if u, err := s.GetUserByName(ctx, "bob"); err != nil || u.TOTPPending != totpEnrolls || u.ID != bob {
		t.Fatalf("bob's pending TOTP secret: %q, %v", u.TOTPPending, err)
	}
}

// With a key, no secret is in the database in plain text, and the API
// still reads and writes them plain.
func TestSecretsSealedAtRest(t *testing.T) {
	ctx := context.Background()
	s, url := store.NewTestStore(t)
	key := newKey(t)
	if n, err := s.UseSealer(ctx, key, "KEYFILE", "FIX"); err != nil || n != 0 {
		t.Fatalf("UseSealer on an empty store: %d, %v", n, err)
	}
	_, _, alice, bob := writeSecrets(t, s)
	raw := rawSecrets(t, url)
	if len(raw) != 4 {
		t.Fatalf("%d secrets stored, want 4: %q", len(raw), raw)
	}
	for _, v := range raw {
		for _, plain := range []string{hmacKey, smtpPass, totpKey, totpEnrolls} {
			if strings.Contains(v, plain) {
				t.Errorf("the database holds %q in plain text: %q", plain, v)
			}
		}
		if !strings.HasPrefix(v, "v1:"+key.ID()+":") {
			t.Errorf("stored secret %q is not sealed with key %s", v, key.ID())
		}
	}
	checkPlainAPI(t, s, alice, bob)
	if ids, err := s.SealedSecretKeys(ctx); err != nil || len(ids) != 1 || ids[0] != key.ID() {
		t.Fatalf("SealedSecretKeys = %q, %v; want [%s]", ids, err, key.ID())
	}

	// Confirming TOTP compares the pending secret opened, and seals it anew
	// as the user's secret.
	if err := s.ConfirmUserTOTP(ctx, bob, "WRONGWRONGWRONGWRONGWRON", 5, nil, at); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("confirm with another secret: %v, want ErrNotFound", err)
	}
	if err := s.ConfirmUserTOTP(ctx, bob, totpEnrolls, 5, []string{"h1"}, at); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if u, err := s.GetUser(ctx, bob); err != nil || u.TOTPSecret != totpEnrolls || u.TOTPPending != "" {
		t.Fatalf("bob after confirming: secret %q pending %q, %v", u.TOTPSecret, u.TOTPPending, err)
	}
	for _, v := range rawSecrets(t, url) {
		if strings.Contains(v, totpEnrolls) || !strings.HasPrefix(v, "v1:") {
			t.Errorf("after confirming, a stored secret is %q", v)
		}
	}
}

// Secrets written without a key (before migration 00030, or by a store
// with no key) are sealed when the relay gives the key, and read the same.
func TestPlainSecretsSealedAtStart(t *testing.T) {
	ctx := context.Background()
	s, url := store.NewTestStore(t)
	_, _, alice, bob := writeSecrets(t, s)
	for _, v := range rawSecrets(t, url) {
		if !strings.HasPrefix(v, "plain:") {
			t.Fatalf("a secret written without a key is stored as %q, want plain:...", v)
		}
	}
	checkPlainAPI(t, s, alice, bob)
	key := newKey(t)
	n, err := s.UseSealer(ctx, key, "KEYFILE", "FIX")
	if err != nil || n != 4 {
		t.Fatalf("UseSealer: sealed %d, %v; want 4", n, err)
	}
	for _, v := range rawSecrets(t, url) {
		if !strings.HasPrefix(v, "v1:"+key.ID()+":") {
			t.Errorf("after UseSealer a secret is stored as %q", v)
		}
	}
	checkPlainAPI(t, s, alice, bob)
	// A second start has nothing left to seal.
	s2 := store.OpenTestStore(t, url)
	if n, err := s2.UseSealer(ctx, key, "KEYFILE", "FIX"); err != nil || n != 0 {
		t.Fatalf("UseSealer again: sealed %d, %v; want 0", n, err)
	}
	checkPlainAPI(t, s2, alice, bob)
}

// Another key is refused at start with an error that names the key file
// and the fix; a store given no key refuses sealed secrets; a sealed value
// moved onto another row does not open; an unknown form is refused.
func TestSealedSecretsWrongKey(t *testing.T) {
	ctx := context.Background()
	s, url := store.NewTestStore(t)
	key := newKey(t)
	if _, err := s.UseSealer(ctx, key, "KEYFILE", "FIX"); err != nil {
		t.Fatal(err)
	}
	hook, mail, _, _ := writeSecrets(t, s)

	other := newKey(t)
	s2 := store.OpenTestStore(t, url)
	_, err := s2.UseSealer(ctx, other, "DATA/secrets.key", "restore it from the backup")
	if !errors.Is(err, store.ErrSecretKey) {
		t.Fatalf("UseSealer with another key: %v, want ErrSecretKey", err)
	}
	for _, want := range []string{"DATA/secrets.key", "restore it from the backup", key.ID(), other.ID()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not name %q", err, want)
		}
	}
	if _, err := store.OpenTestStore(t, url).ListAlertRoutes(ctx); !errors.Is(err, store.ErrSecretKey) {
		t.Fatalf("a store with no key lists sealed routes: %v, want ErrSecretKey", err)
	}

	db := store.RawTestDB(t, url)
	if _, err := db.Exec(`UPDATE alert_routes SET secret = (SELECT secret FROM alert_routes WHERE id = $1) WHERE id = $2`, hook, mail); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListAlertRoutes(ctx); err == nil || !strings.Contains(err.Error(), "does not open") || !strings.Contains(err.Error(), "set this secret again") {
		t.Fatalf("a sealed secret copied onto another route: %v, want it refused", err)
	}
	if _, err := db.Exec(`UPDATE alert_routes SET secret = 'bare-secret' WHERE id = $1`, mail); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListAlertRoutes(ctx); err == nil || !strings.Contains(err.Error(), "no known form") {
		t.Fatalf("a secret in no known form: %v, want it refused", err)
	}
}
