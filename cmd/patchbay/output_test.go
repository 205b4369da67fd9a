package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// fixedNow is the clock of every golden test.
var fixedNow = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func ago(d time.Duration) *time.Time {
	t := fixedNow.Add(-d)
	return &t
}

// fixtureAgents covers online, offline, never-connected, revoked, tagless and
// hostile (control characters in agent-reported fields) agents.
func fixtureAgents() []apiv1.Agent {
	return []apiv1.Agent{
		{
			ID: "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e", Hostname: "web-01", OS: "linux", Arch: "amd64", Version: "0.1.0",
			Tags: map[string]string{"site": "paris", "env": "prod", "role": "web"}, Online: true, LastSeen: ago(5 * time.Second),
			OSVersion: "Ubuntu 24.04.1 LTS", Users: []string{"alice", "bob"}, IPs: []string{"10.0.0.5", "fe80::1"},
			ScopedTags: map[string]string{"site": "paris"}, EnrolledAt: fixedNow.Add(-30 * 24 * time.Hour), FirstSeen: ago(30 * 24 * time.Hour),
			Site: "acme/paris", SiteID: "0190c6a0-0000-7000-8000-0000000000a1",
		},
		{
			ID: "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5f", Hostname: "LAPTOP-7F3K", OS: "windows", Arch: "arm64", Version: "0.1.0",
			Tags: map[string]string{"site": "lyon"}, LastSeen: ago(3*24*time.Hour + 5*time.Hour),
			EnrolledAt: fixedNow.Add(-40 * 24 * time.Hour), FirstSeen: ago(40 * 24 * time.Hour),
			Site: "acme/lyon", SiteID: "0190c6a0-0000-7000-8000-0000000000a2",
		},
		{
			ID: "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d60", Hostname: "kiosk-3", OS: "linux", Arch: "arm", Version: "0.0.9",
			Tags: map[string]string{}, EnrolledAt: fixedNow.Add(-2 * time.Hour),
			Site: "default/default", SiteID: "00000000-0000-7000-8000-000000000002",
		},
		{
			ID: "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d61", Hostname: "mac\x1b[31mmini\tx", OS: "darwin", Arch: "arm64", Version: "0.1.0",
			Tags: map[string]string{"owner": "ev\nil"}, LastSeen: ago(47 * time.Minute), Revoked: true, RevokedAt: ago(40 * time.Minute),
			EnrolledAt: fixedNow.Add(-24 * time.Hour),
		},
	}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestAgentsTableGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := writeAgentsTable(&buf, fixtureAgents(), fixedNow); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(buf.String(), '\x1b') {
		t.Error("an escape character from agent data reached the terminal")
	}
	golden(t, "agents_list.golden", buf.Bytes())
}

func TestAgentDetailGolden(t *testing.T) {
	for i, name := range []string{"agents_show_online.golden", "agents_show_never.golden"} {
		var buf bytes.Buffer
		if err := writeAgentDetail(&buf, fixtureAgents()[i*2], fixedNow); err != nil {
			t.Fatal(err)
		}
		golden(t, name, buf.Bytes())
	}
	var buf bytes.Buffer
	if err := writeAgentDetail(&buf, fixtureAgents()[3], fixedNow); err != nil {
		t.Fatal(err)
	}
	golden(t, "agents_show_revoked.golden", buf.Bytes())
}

func TestTokensTablesGolden(t *testing.T) {
	exp := fixedNow.Add(90 * 24 * time.Hour)
	past := fixedNow.Add(-time.Hour)
	enroll := []apiv1.EnrollToken{
		{ID: "et-1", Tags: map[string]string{"site": "paris", "env": "prod"}, UsesAllowed: 10, Uses: 3,
			ExpiresAt: fixedNow.Add(23 * time.Hour), CreatedAt: fixedNow.Add(-time.Hour), CreatedBy: "alice", Site: "acme/paris"},
		{ID: "et-2", UsesAllowed: 0, Uses: 41, ExpiresAt: fixedNow.Add(6 * 24 * time.Hour),
			CreatedAt: fixedNow.Add(-24 * time.Hour), CreatedBy: "alice", Site: "default/default"},
		{ID: "et-3", UsesAllowed: 1, Uses: 1, ExpiresAt: fixedNow.Add(time.Hour), CreatedAt: fixedNow.Add(-time.Hour), CreatedBy: "bob"},
		{ID: "et-4", UsesAllowed: 1, ExpiresAt: past, CreatedAt: fixedNow.Add(-25 * time.Hour), CreatedBy: "bob"},
		{ID: "et-5", UsesAllowed: 5, ExpiresAt: fixedNow.Add(time.Hour), CreatedAt: fixedNow.Add(-time.Hour), CreatedBy: "bob", Revoked: true},
	}
	var buf bytes.Buffer
	if err := writeEnrollTokensTable(&buf, enroll, fixedNow); err != nil {
		t.Fatal(err)
	}
	golden(t, "tokens_list.golden", buf.Bytes())

	api := []apiv1.APIToken{
		{ID: "at-1", Role: apiv1.RoleAdmin, Name: "bootstrap", CreatedAt: fixedNow.Add(-72 * time.Hour)},
		{ID: "at-2", Role: apiv1.RoleTechnician, Name: "Dana Scully", CreatedAt: fixedNow.Add(-time.Hour), ExpiresAt: &exp},
		{ID: "at-3", Role: apiv1.RoleViewer, Name: "grafana", CreatedAt: fixedNow.Add(-48 * time.Hour), ExpiresAt: &past},
		{ID: "at-4", Role: apiv1.RoleViewer, Name: "old laptop", CreatedAt: fixedNow.Add(-48 * time.Hour), Revoked: true},
	}
	buf.Reset()
	if err := writeAPITokensTable(&buf, api, fixedNow); err != nil {
		t.Fatal(err)
	}
	golden(t, "api_tokens_list.golden", buf.Bytes())
}

func TestAuditTableGolden(t *testing.T) {
	recs := []audit.Record{
		{Seq: 1, Time: fixedNow.Add(-time.Hour), Actor: "system", Action: "relay.init", Target: "",
			Detail: map[string]string{"ca_fingerprint": "sha256:3f1c"}},
		{Seq: 2, Time: fixedNow.Add(-50 * time.Minute), Actor: "token:at-1 (admin)", Action: "token.create", Target: "et-1",
			Detail: map[string]string{"uses": "10", "tags": "env=prod,site=paris", "ttl": "24h"}},
		{Seq: 3, Time: fixedNow.Add(-10 * time.Minute), Actor: "agent:0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e", Action: "enroll",
			Target: "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e", Detail: map[string]string{"hostname": "web 01", "note": ""}},
		{Seq: 4, Time: fixedNow, Actor: "token:at-1 (admin)", Action: "agent.revoke", Target: "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d61"},
	}
	var buf bytes.Buffer
	if err := writeAuditTable(&buf, recs); err != nil {
		t.Fatal(err)
	}
	golden(t, "audit_list.golden", buf.Bytes())
}

func TestRelTime(t *testing.T) {
	tests := []struct {
		t    *time.Time
		want string
	}{
		{nil, "never"},
		{&time.Time{}, "never"},
		{ago(0), "just now"},
		{ago(-500 * time.Millisecond), "just now"},
		{ago(5 * time.Second), "5s ago"},
		{ago(59*time.Second + 900*time.Millisecond), "59s ago"},
		{ago(3 * time.Minute), "3m ago"},
		{ago(7 * time.Hour), "7h ago"},
		{ago(47 * time.Hour), "47h ago"},
		{ago(3 * 24 * time.Hour), "3d ago"},
		{ago(-23 * time.Hour), "in 23h"},
		{ago(-7 * 24 * time.Hour), "in 7d"},
	}
	for _, tt := range tests {
		if got := relTime(fixedNow, tt.t); got != tt.want {
			t.Errorf("relTime(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestClean(t *testing.T) {
	tests := map[string]string{
		"web-01":          "web-01",
		"Zürich ünïcode":  "Zürich ünïcode",
		"a\x1b[31mred":    `a\x1b[31mred`,
		"tab\there\nline": `tab\there\nline`,
		"del\x7f":         `del\x7f`,
		"c1\u009bx":       `c1\u009bx`,
	}
	for in, want := range tests {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseTags(t *testing.T) {
	got, err := parseTags(" site=paris, env=prod ,empty=")
	if err != nil || len(got) != 3 || got["site"] != "paris" || got["env"] != "prod" || got["empty"] != "" {
		t.Errorf("parseTags = %v, %v", got, err)
	}
	if got, err := parseTags(""); err != nil || len(got) != 0 {
		t.Errorf("parseTags(\"\") = %v, %v", got, err)
	}
	for _, bad := range []string{"site", "=paris", "a=1,a=2", "a=1,,b=2"} {
		if _, err := parseTags(bad); err == nil {
			t.Errorf("parseTags(%q) accepted", bad)
		}
	}
}

func TestParseAnchor(t *testing.T) {
	an, err := parseAnchor("1500:3F1C9A0B7D2E4C5A")
	if err != nil || an.seq != 1500 || an.hash != "3f1c9a0b7d2e4c5a" {
		t.Errorf("parseAnchor = %+v, %v", an, err)
	}
	for _, bad := range []string{"1500", "0:3f1c9a0b7d2e4c5a", "x:3f1c9a0b7d2e4c5a", "12:3f1c", "12:3f1c9a0b7d2e4c5z"} {
		if _, err := parseAnchor(bad); err == nil {
			t.Errorf("parseAnchor(%q) accepted", bad)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"pbe_abc-DEF.123":         "pbe_abc-DEF.123",
		"https://relay:8443/pb":   "https://relay:8443/pb",
		"it's $HOME":              `'it'\''s $HOME'`,
		"sha256:" + "ab" + "cd01": "sha256:abcd01",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
