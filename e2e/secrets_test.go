package e2e

import (
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // to read what the tier stored
	"github.com/pquerna/otp/totp"
	_ "modernc.org/sqlite" // to read what the relay stored

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/tiersecrets"
)

// storedSecrets returns the secrets columns of a relay's database (driver
// "sqlite" or "pgx"), as stored.
func storedSecrets(t *testing.T, driver, dsn string) []string {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	for _, q := range []string{`SELECT secret FROM alert_routes`, `SELECT totp_secret FROM users`, `SELECT totp_pending FROM users`} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v != "" {
				out = append(out, v)
			}
		}
		rows.Close()
	}
	return out
}

// A relay on SQLite seals the webhook's HMAC key and a user's TOTP secret
// with DATA/secrets.key (0600): the database holds neither in plain text. A
// backup keeps the key: on the restored relay the receiver verifies the
// webhook's signature and the user logs in with a TOTP code. Started
// without the key, or with another one, the relay refuses and names the
// key file and the fix.
func TestBackupKeepsSealedSecretsUsable(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	r := StartRelayArgs(t, "--alert-offline-after", "2s")
	admin := r.Login(r.AdminToken())
	keyFile := filepath.Join(r.Dir, "secrets.key")
	st, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("the relay made no secrets key: %v", err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", keyFile, st.Mode().Perm())
	}

	hookSecret := "e2e-sealed-hook-secret"
	hook := hookRoute(t, admin, hookSecret)
	pw := strings.SplitN(admin.Run("users", "create", "Dana", "--role", "technician"), "\n", 2)[0]
	dana := &CLI{t: t, env: []string{"PATCHBAY_CONFIG=" + filepath.Join(t.TempDir(), "dana.json")}}
	if _, errOut, err := tryIn(dana.env, pw+"\n", "login", "--server", r.URL, "--ca-fingerprint", r.FP, "--user", "dana", "--password-stdin"); err != nil {
		t.Fatalf("dana's login: %v %s", err, errOut)
	}
	totpSecret, _ := enrolTOTP(t, dana)

	stored := storedSecrets(t, "sqlite", "file:"+filepath.Join(r.Dir, "patchbay.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if len(stored) != 2 {
		t.Fatalf("stored secrets %q, want the webhook's and dana's", stored)
	}
	for _, v := range stored {
		if strings.Contains(v, hookSecret) || strings.Contains(v, totpSecret) || !strings.HasPrefix(v, "v1:") {
			t.Fatalf("the database holds a secret as %q, want it sealed (v1:...)", v)
		}
	}

	out := filepath.Join(t.TempDir(), "backup.tar")
	run(t, nil, bin("patchbay-server"), "backup", "--data", r.Dir, out)
	r.proc.stop(t)
	fresh := filepath.Join(t.TempDir(), "restored")
	run(t, nil, bin("patchbay-server"), "restore", "--data", fresh, out)
	serve := []string{"serve", "--data", fresh, "--listen", freePort(t), "--alert-offline-after", "2s"}

	// Without the key, and with another key, the relay does not start.
	aside := filepath.Join(t.TempDir(), "secrets.key")
	if err := os.Rename(filepath.Join(fresh, "secrets.key"), aside); err != nil {
		t.Fatalf("the backup did not restore secrets.key: %v", err)
	}
	_, errOut, err := try(nil, bin("patchbay-server"), serve...)
	if err == nil || !strings.Contains(errOut, "secrets.key is missing") || !strings.Contains(errOut, "restore secrets.key from a backup") {
		t.Fatalf("relay without its secrets key: err %v, stderr %q; want a refusal naming the key file and the fix", err, errOut)
	}
	if _, err := os.Stat(filepath.Join(fresh, "secrets.key")); err == nil {
		t.Fatal("the relay made a new secrets key over sealed secrets")
	}
	other, err := tiersecrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fresh, "secrets.key"), other, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, err = try(nil, bin("patchbay-server"), serve...)
	if err == nil || !strings.Contains(errOut, "sealed with another key") || !strings.Contains(errOut, filepath.Join(fresh, "secrets.key")) ||
		!strings.Contains(errOut, "from a backup of this data directory") {
		t.Fatalf("relay with another secrets key: err %v, stderr %q; want a refusal naming the key file and the fix", err, errOut)
	}
	if err := os.Rename(aside, filepath.Join(fresh, "secrets.key")); err != nil {
		t.Fatal(err)
	}

	r2 := &Relay{Dir: fresh, Addr: freePort(t), Heartbeat: "1s", Args: []string{"--alert-offline-after", "2s"}, t: t}
	r2.URL = "https://" + r2.Addr
	r2.Start()
	t.Cleanup(func() { r2.proc.stop(t) })
	r2.FP = r.FP

	// TOTP login on the restored relay (the next period's code: the
	// enrolment used this one's).
	code, _ := totp.GenerateCode(totpSecret, time.Now().Add(30*time.Second))
	dana2 := &CLI{t: t, env: []string{"PATCHBAY_CONFIG=" + filepath.Join(t.TempDir(), "dana2.json")}}
	if out, errOut, err := tryIn(dana2.env, pw+"\n"+code+"\n", "login", "--server", r2.URL, "--ca-fingerprint", r2.FP,
		"--user", "dana", "--password-stdin"); err != nil {
		t.Fatalf("TOTP login on the restored relay: %v\n%s\n%s", err, out, errOut)
	}

	// The restored webhook route signs with the same key.
	admin2 := r2.Login(r2.AdminToken())
	signedOfflineAlert(t, r2, admin2, hook)
}

// A relay of a tier (PostgreSQL) seals the secrets with the tier key: the
// database holds the webhook's HMAC key sealed under the tier key's ID, and
// the receiver verifies the signature of what the relay sends.
func TestTierSealsSecretsWithTierKey(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	b := startTier(t, "--alert-offline-after", "2s")
	key, err := tiersecrets.ReadKeyFile(b.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.a.Dir, "secrets.key")); err == nil {
		t.Error("a relay on PostgreSQL made DATA/secrets.key: the tier key seals its secrets")
	}
	admin := b.a.Login(strings.TrimSpace(run(t, nil, bin("patchbay-server"), "admin-token", "--data", b.a.Dir, "--db", b.db)))
	hookSecret := "e2e-tier-hook-secret"
	hook := hookRoute(t, admin, hookSecret)
	stored := storedSecrets(t, "pgx", b.db)
	if len(stored) != 1 || strings.Contains(stored[0], hookSecret) || !strings.HasPrefix(stored[0], "v1:"+key.ID()+":") {
		t.Fatalf("stored secrets %q, want the webhook's sealed with the tier key %s", stored, key.ID())
	}

	signedOfflineAlert(t, b.a, admin, hook)
}

// hookRoute starts a webhook receiver that verifies signatures with secret
// and routes every warning or worse to it.
func hookRoute(t *testing.T, admin *CLI, secret string) *hookReceiver {
	t.Helper()
	hook := startHookReceiver(t, secret)
	secretFile := filepath.Join(t.TempDir(), "hook.key")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin.Run("alert-routes", "create", "--site", "all", "--min-severity", "warning", "--webhook", hook.url, "--secret-file", secretFile)
	return hook
}

// signedOfflineAlert enrolls an agent on r (started with
// --alert-offline-after), stops it, and waits for the webhook receiver to
// accept the signed open event of its agent_offline alert.
func signedOfflineAlert(t *testing.T, r *Relay, admin *CLI, hook *hookReceiver) {
	t.Helper()
	a := r.Enroll(admin.Token()).Start()
	waitFor(t, 20*time.Second, "agent online", func() bool { return admin.Online(a.ID) })
	a.proc.stop(t)
	var alert apiv1.Alert
	waitFor(t, 30*time.Second, "an agent_offline alert", func() bool {
		for _, x := range admin.alerts(t, "--kind", "agent_offline") {
			if x.AgentID == a.ID {
				alert = x
				return true
			}
		}
		return false
	})
	waitFor(t, 30*time.Second, "the webhook to receive the open event, signed", func() bool { return hook.has(alert.ID, "open") })
	hook.mu.Lock()
	bad := hook.bad
	hook.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d webhook requests with a bad signature", bad)
	}
}
