package client_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/client/clienttest"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// colonUpper writes a fingerprint as SHA256:AB:CD:..., as other tools print it.
func colonUpper(fp string) string {
	hex := strings.TrimPrefix(fp, "sha256:")
	var parts []string
	for i := 0; i < len(hex); i += 2 {
		parts = append(parts, strings.ToUpper(hex[i:i+2]))
	}
	return "SHA256:" + strings.Join(parts, ":")
}

func TestLoginPinsCAAndSavesConfig(t *testing.T) {
	relay := clienttest.New(t)
	cfg, err := client.Login(ctx(t), relay.URL+"/", relay.AdminToken, colonUpper(relay.Fingerprint))
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if cfg.Server != relay.URL {
		t.Errorf("Server = %q, want %q (trailing slash removed)", cfg.Server, relay.URL)
	}
	if cfg.CAFingerprint != relay.Fingerprint {
		t.Errorf("CAFingerprint = %q, want canonical %q", cfg.CAFingerprint, relay.Fingerprint)
	}
	if cfg.CAPEM != string(relay.CA.CertPEM) {
		t.Errorf("CAPEM is not the relay's CA certificate")
	}
	if cfg.Name != "alice" || cfg.Role != apiv1.RoleAdmin || cfg.Token != relay.AdminToken {
		t.Errorf("identity = %q %q %q", cfg.Name, cfg.Role, cfg.Token)
	}
	if got := relay.Requests(); len(got) != 1 || got[0] != "POST /v1/login" {
		t.Errorf("requests = %q, want one POST /v1/login", got)
	}

	path := filepath.Join(t.TempDir(), "sub", "config.json")
	t.Setenv(client.ConfigEnv, path)
	if p, err := client.ConfigPath(); err != nil || p != path {
		t.Fatalf("ConfigPath = %q, %v", p, err)
	}
	if _, err := client.SaveConfig(cfg); err != nil {
		t.Fatalf("SaveConfig: %v", err)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("config mode = %v, want 0600", fi.Mode().Perm())
		}
		di, err := os.Stat(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if di.Mode().Perm() != 0o700 {
			t.Errorf("config dir mode = %v, want 0700", di.Mode().Perm())
		}
	}
	loaded, err := client.LoadConfig()
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if loaded != cfg {
		t.Errorf("loaded %+v, saved %+v", loaded, cfg)
	}

	c, err := client.New(loaded)
	if err != nil {
		t.Fatal(err)
	}
	who, err := c.Whoami(ctx(t))
	if err != nil {
		t.Fatalf("Whoami with the saved config: %v", err)
	}
	if who.Name != "alice" {
		t.Errorf("whoami name = %q", who.Name)
	}
}

func TestLoginWrongFingerprintRefused(t *testing.T) {
	relay := clienttest.New(t)
	other, err := certs.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Login(ctx(t), relay.URL, relay.AdminToken, other.Fingerprint())
	if err == nil {
		t.Fatal("Login with another CA's fingerprint succeeded")
	}
	msg := err.Error()
	for _, want := range []string{
		"server CA fingerprint mismatch",
		"expected " + other.Fingerprint(),
		"server presented " + relay.Fingerprint,
		relay.URL,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if got := relay.Requests(); len(got) != 0 {
		t.Errorf("the token reached the relay: %q", got)
	}
}

func TestLoginErrors(t *testing.T) {
	relay := clienttest.New(t)
	tests := []struct {
		name, server, token, fp, want string
	}{
		{"bad token", relay.URL, "nope", relay.Fingerprint, "API token unknown, expired or revoked: ask an admin for a new one (patchbay api-tokens create); log in again with patchbay login"},
		{"bad fingerprint", relay.URL, relay.AdminToken, "md5:00", "missing the sha256: prefix"},
		{"http", strings.Replace(relay.URL, "https", "http", 1), relay.AdminToken, relay.Fingerprint, "scheme must be https"},
		{"empty token", relay.URL, " ", relay.Fingerprint, "token is empty"},
		{"no relay", "https://127.0.0.1:1", relay.AdminToken, relay.Fingerprint, "https://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.Login(ctx(t), tt.server, tt.token, tt.fp)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestClientTrustsOnlySavedCA(t *testing.T) {
	a := clienttest.New(t)
	b := clienttest.New(t)
	cfg := a.Admin()
	cfg.Server = b.URL // same host, certificate from another CA
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Agents(ctx(t), "")
	if err == nil {
		t.Fatal("request to a relay with another CA succeeded")
	}
	for _, want := range []string{"list agents: connect to relay " + b.URL, "does not verify against the CA saved at login"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if got := b.Requests(); len(got) != 0 {
		t.Errorf("the token reached the other relay: %q", got)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(client.ConfigEnv, filepath.Join(dir, "missing.json"))
	_, err := client.LoadConfig()
	if !errors.Is(err, client.ErrNotLoggedIn) {
		t.Fatalf("missing config: %v", err)
	}
	if want := "not logged in: run patchbay login --server URL --token TOKEN --ca-fingerprint sha256:<hex>"; err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}

	relay := clienttest.New(t)
	path := filepath.Join(dir, "config.json")
	if err := client.SaveConfigTo(path, relay.Admin()); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := client.LoadConfigFrom(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("world-readable config: %v", err)
		}
		_ = os.Chmod(path, 0o600)
	}

	bad := relay.Admin()
	bad.CAFingerprint = "sha256:" + strings.Repeat("ab", 32)
	if err := client.SaveConfigTo(path, bad); err == nil || !strings.Contains(err.Error(), "not the saved") {
		t.Errorf("saving a config whose CA does not match its fingerprint: %v", err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := client.LoadConfigFrom(path); err == nil || !strings.Contains(err.Error(), "run patchbay login again") {
		t.Errorf("corrupt config: %v", err)
	}
}

func TestAPIErrorsSurfaced(t *testing.T) {
	relay := clienttest.New(t)
	relay.Enroll(t, store.Agent{ID: "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e", Hostname: "web-1", OS: "linux"}, nil)
	relay.Enroll(t, store.Agent{ID: "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5f", Hostname: "web-1", OS: "linux"}, nil)
	viewer, err := client.New(relay.Viewer())
	if err != nil {
		t.Fatal(err)
	}
	uses := 1
	tests := []struct {
		name   string
		call   func() error
		status int
		want   string
	}{
		{"role too low", func() error {
			_, err := viewer.CreateEnrollToken(ctx(t), apiv1.EnrollTokenRequest{Uses: &uses})
			return err
		}, http.StatusForbidden, `create enrollment token: this needs the admin role; token "victor" has role viewer`},
		{"bad selector", func() error {
			_, err := viewer.Agents(ctx(t), "site=par is")
			return err
		}, http.StatusBadRequest, `list agents: selector: term 1 "site=par is"`},
		{"unknown agent", func() error {
			_, err := viewer.Agent(ctx(t), "db-9")
			return err
		}, http.StatusNotFound, `show agent db-9: no agent with ID, ID prefix or hostname "db-9"`},
		{"ambiguous hostname", func() error {
			_, err := viewer.Agent(ctx(t), "web-1")
			return err
		}, http.StatusConflict, `show agent web-1: "web-1" names 2 agents: 0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e (web-1), 0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5f (web-1): use an ID`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var ae *client.APIError
			if !errors.As(err, &ae) || ae.Status != tt.status {
				t.Fatalf("error = %v, want an APIError with status %d", err, tt.status)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
		})
	}

	if _, err := viewer.Agent(ctx(t), ".."); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Errorf(`Agent(".."): %v`, err)
	}

	// The selector reaches the relay intact.
	got, err := viewer.Agents(ctx(t), "hostname=web-*,os in (linux, darwin)")
	if err != nil || len(got) != 2 {
		t.Fatalf("Agents: %v, %d agents", err, len(got))
	}
}

func TestTokensRoundTrip(t *testing.T) {
	relay := clienttest.New(t)
	c, err := client.New(relay.Admin())
	if err != nil {
		t.Fatal(err)
	}
	uses := 0
	et, err := c.CreateEnrollToken(ctx(t), apiv1.EnrollTokenRequest{Tags: map[string]string{"site": "paris"}, Uses: &uses, TTL: "7d"})
	if err != nil {
		t.Fatal(err)
	}
	if et.Token == "" || et.UsesAllowed != 0 || et.Tags["site"] != "paris" {
		t.Errorf("created %+v", et)
	}
	list, err := c.EnrollTokens(ctx(t))
	if err != nil || len(list) != 1 || list[0].Token != "" {
		t.Fatalf("EnrollTokens = %+v, %v", list, err)
	}
	if err := c.RevokeEnrollToken(ctx(t), et.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeEnrollToken(ctx(t), store.NewID()); !client.IsStatus(err, http.StatusNotFound) {
		t.Errorf("revoking an unknown token: %v", err)
	}

	at, err := c.CreateAPIToken(ctx(t), apiv1.APITokenRequest{Role: apiv1.RoleViewer, Name: "grafana", TTL: "90d"})
	if err != nil || at.Token == "" || at.ExpiresAt == nil {
		t.Fatalf("CreateAPIToken = %+v, %v", at, err)
	}
	if err := c.RevokeAPIToken(ctx(t), at.ID); err != nil {
		t.Fatal(err)
	}
	ats, err := c.APITokens(ctx(t))
	if err != nil || len(ats) != 3 {
		t.Fatalf("APITokens = %+v, %v; want alice's, victor's and grafana", ats, err)
	}
	for _, tok := range ats {
		if tok.Token != "" || tok.Revoked != (tok.ID == at.ID) {
			t.Errorf("listed %+v; want no secret, and only grafana revoked", tok)
		}
	}
}

func TestParseServerURL(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"relay.example.com:8443", "https://relay.example.com:8443", ""},
		{"https://relay.example.com/", "https://relay.example.com", ""},
		{"HTTPS://relay/patchbay/", "https://relay/patchbay", ""},
		{"https://[::1]:8443", "https://[::1]:8443", ""},
		{"http://relay", "", "scheme must be https"},
		{"https://user:pw@relay", "", "user info"},
		{"https://relay/?x=1", "", "query"},
		{"", "", "empty"},
		{"https://", "", "no host"},
	}
	for _, tt := range tests {
		u, err := client.ParseServerURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseServerURL(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || u.String() != tt.want {
			t.Errorf("ParseServerURL(%q) = %v, %v; want %q", tt.in, u, err, tt.want)
		}
	}
}

func TestAPIErrorHint(t *testing.T) {
	for _, tt := range []struct {
		err  client.APIError
		want string
	}{
		{client.APIError{Status: 401, Message: "missing bearer token: run patchbay login"}, "missing bearer token: run patchbay login"},
		{client.APIError{Status: 401, Message: "API token unknown, expired or revoked"}, "API token unknown, expired or revoked; log in again with patchbay login"},
		{client.APIError{Status: 403, Message: "this needs the admin role"}, "this needs the admin role"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
