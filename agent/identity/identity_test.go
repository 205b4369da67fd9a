package identity

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/patchbay/patchbay/certs"
)

// issue makes an identity signed by a fresh CA, without files.
func issue(t *testing.T, dir string) (*Identity, *certs.CA) {
	t.Helper()
	ca, err := certs.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return issueFrom(t, dir, ca), ca
}

func issueFrom(t *testing.T, dir string, ca *certs.CA) *Identity {
	t.Helper()
	key, err := certs.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := certs.CreateCSR(key, "host")
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.SignAgentCSR(csr, uuid.NewString(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	id, err := New(dir, "relay.example.com:8443/", map[string]string{"site": "paris"}, key, cert, ca.Cert, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	id, ca := issue(t, dir)
	id.Hostname = "till-07"
	if err := Save(id); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.AgentID != id.AgentID || got.ServerURL != "https://relay.example.com:8443" ||
		got.CAFingerprint != ca.Fingerprint() || got.Tags["site"] != "paris" || got.Hostname != "till-07" {
		t.Errorf("loaded %+v", got)
	}
	if !got.EnrolledAt.Equal(id.EnrolledAt) {
		t.Errorf("enrolled_at %v, want %v", got.EnrolledAt, id.EnrolledAt)
	}
	tc := got.TLSConfig()
	if tc.ServerName != "relay.example.com" || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.Certificates[0].Leaf == nil {
		t.Errorf("tls config %+v", tc)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
}

func TestLoadNotEnrolled(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "agent not enrolled") || !strings.Contains(err.Error(), "patchbay-agent enroll") ||
		!strings.Contains(err.Error(), dir) {
		t.Fatalf("error %v", err)
	}
}

func TestLoadDetectsMismatchedFiles(t *testing.T) {
	dir := t.TempDir()
	id, ca := issue(t, dir)
	if err := Save(id); err != nil {
		t.Fatal(err)
	}
	// A certificate from another enrollment (same CA, other key and ID).
	other := issueFrom(t, t.TempDir(), ca)
	if err := os.WriteFile(filepath.Join(dir, CertFile), certs.CertPEM(other.Cert.Leaf.Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), CertFile) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("mismatched certificate: error %v", err)
	}

	// A CA that is not the pinned one.
	if err := Save(id); err != nil {
		t.Fatal(err)
	}
	foreign, err := certs.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CAFile), foreign.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("foreign CA: error %v", err)
	}

	// An agent ID in agent.json that is not the certificate's.
	if err := Save(id); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	var cfg map[string]any
	json.Unmarshal(raw, &cfg)
	cfg["agent_id"] = uuid.NewString()
	raw, _ = json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, ConfigFile), raw, 0o600)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "names agent") {
		t.Fatalf("wrong agent id: error %v", err)
	}
}

func TestEnrolled(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := Enrolled(dir); ok || err != nil {
		t.Fatalf("empty dir enrolled=%v err=%v", ok, err)
	}
	// Leftovers of an interrupted enrollment do not count.
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("x"), 0o600)
	if _, ok, _ := Enrolled(dir); ok {
		t.Fatal("a lone key counts as an enrollment")
	}
	id, _ := issue(t, dir)
	if err := Save(id); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := Enrolled(dir); !ok || err != nil || p != filepath.Join(dir, ConfigFile) {
		t.Fatalf("enrolled=%v path=%s err=%v", ok, p, err)
	}
}

func TestNormalizeServerURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://relay:8443":         "https://relay:8443",
		"relay:8443":                 "https://relay:8443",
		" HTTPS://relay:8443/ ":      "https://relay:8443",
		"https://[::1]:8443":         "https://[::1]:8443",
		"https://example.com/pb/":    "https://example.com/pb",
		"wss://relay.example.com":    "https://relay.example.com",
		"http://relay:8443":          "",
		"https://":                   "",
		"":                           "",
		"https://u:p@relay:8443":     "",
		"https://relay:8443/?x=1":    "",
		"ftp://relay.example.com:21": "",
	} {
		got, err := NormalizeServerURL(in)
		if want == "" {
			if err == nil {
				t.Errorf("NormalizeServerURL(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("NormalizeServerURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestServers: the relays of a tier are saved in agent.json in order and
// loaded back; one address keeps the old agent.json form; each address gets
// a TLS configuration with its own host name and the same pinned CA.
func TestServers(t *testing.T) {
	dir := t.TempDir()
	id, _ := issue(t, dir)
	if err := Save(id); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	if strings.Contains(string(raw), `"servers"`) {
		t.Fatalf("one relay address wrote servers: %s", raw)
	}
	if err := id.SetServers([]string{"relay-b.example.com:8443", "https://relay-a.example.com:8443/", "relay-b.example.com:8443"}); err != nil {
		t.Fatal(err)
	}
	if err := SaveServers(id); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://relay-b.example.com:8443", "https://relay-a.example.com:8443"}
	if strings.Join(got.Servers, " ") != strings.Join(want, " ") || got.ServerURL != want[0] {
		t.Fatalf("loaded servers %v (server %s), want %v", got.Servers, got.ServerURL, want)
	}
	if tc := got.TLSConfigFor(got.Servers[1]); tc.ServerName != "relay-a.example.com" || tc.RootCAs != got.CAPool {
		t.Fatalf("TLS config for the second relay: server name %q", tc.ServerName)
	}
	if err := id.SetServers([]string{"http://relay.example.com"}); err == nil {
		t.Fatal("an http:// relay address was accepted")
	}
	if err := id.SetServers(nil); err == nil {
		t.Fatal("no relay address was accepted")
	}
	// A hand-edited agent.json whose server is not the first of servers.
	var cfg map[string]any
	json.Unmarshal(raw, &cfg)
	cfg["servers"] = []string{"https://other.example.com"}
	b, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o600)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "first of servers") {
		t.Fatalf("server not first of servers: %v", err)
	}
}
