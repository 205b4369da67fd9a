package sso

import (
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestParseRoleMap(t *testing.T) {
	m, err := ParseRoleMap(" helpdesk = technician, IT Admins=admin,,auditors=viewer ")
	if err != nil || len(m) != 3 || m["helpdesk"] != "technician" || m["IT Admins"] != "admin" || m["auditors"] != "viewer" {
		t.Fatalf("ParseRoleMap = %v, %v", m, err)
	}
	for _, bad := range []string{"helpdesk", "=admin", "helpdesk=root"} {
		if _, err := ParseRoleMap(bad); err == nil || !strings.Contains(err.Error(), "--oidc-role-map") {
			t.Errorf("ParseRoleMap(%q) = %v, want an error naming the flag", bad, err)
		}
	}
}

func TestValidate(t *testing.T) {
	good := func() Config {
		return Config{Issuer: "https://idp.example.com/", ClientID: "patchbay", ClientSecret: "s",
			RoleMap: map[string]string{"helpdesk": "technician"}}
	}
	c := good()
	if err := c.Validate(); err != nil || c.GroupsClaim != "groups" || c.Scopes[0] != "openid" {
		t.Fatalf("Validate = %v, %+v", err, c)
	}
	cases := map[string]func(*Config){
		"--oidc-issuer is required":   func(c *Config) { c.Issuer = "" },
		"plain http":                  func(c *Config) { c.Issuer = "http://idp.example.com/" },
		"--oidc-client-id":            func(c *Config) { c.ClientID = "" },
		"--oidc-client-secret-file":   func(c *Config) { c.ClientSecret = "" },
		"--oidc-role-map is required": func(c *Config) { c.RoleMap = nil },
		"--oidc-redirect-url":         func(c *Config) { c.RedirectURL = "https://relay.example.com/callback" },
	}
	for want, mutate := range cases {
		c := good()
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate = %v", want, err)
		}
	}
	c = good()
	c.Issuer, c.AllowHTTP = "http://127.0.0.1:5556/", true
	if err := c.Validate(); err != nil {
		t.Errorf("http issuer with AllowHTTP: %v", err)
	}
}

func TestDecide(t *testing.T) {
	p, err := New(Config{Issuer: "https://idp.example.com/", ClientID: "patchbay", ClientSecret: "s",
		AllowedDomains: []string{"Example.com", "@corp.example"}, AllowedGroups: []string{"helpdesk", "it-admins", "staff"},
		RoleMap: map[string]string{"helpdesk": "technician", "it-admins": "admin", "auditors": "viewer"}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	dana := Identity{Subject: "1", Email: "dana@example.com", EmailVerified: true, Groups: []string{"helpdesk", "it-admins"}, GroupsFound: true}
	if role, err := p.Decide(dana); err != nil || role != "admin" {
		t.Fatalf("highest role: %q %v", role, err)
	}
	refused := func(id Identity, reason string, parts ...string) {
		t.Helper()
		_, err := p.Decide(id)
		var r *Refusal
		if !errors.As(err, &r) || r.Reason != reason {
			t.Fatalf("Decide(%+v) = %v, want a %s refusal", id, err, reason)
		}
		for _, s := range parts {
			if !strings.Contains(r.Message, s) {
				t.Errorf("refusal %q lacks %q", r.Message, s)
			}
		}
	}
	id := dana
	id.Email = "dana@evil.test"
	refused(id, "domain", "dana@evil.test", "example.com, corp.example")
	id = dana
	id.EmailVerified = false
	refused(id, "domain", "not verified")
	id = dana
	id.Email = ""
	refused(id, "domain", "no email")
	id = dana
	id.Groups = []string{"sales"}
	refused(id, "group", "your groups: sales")
	id.Groups = []string{"staff"} // admitted but mapped to nothing
	refused(id, "role", "your groups: staff", "mapped: auditors, helpdesk, it-admins")
	id.Groups, id.GroupsFound = nil, false
	refused(id, "group", `no "groups" claim`)
	id.Email = "erin@CORP.example"
	id.Groups, id.GroupsFound = []string{"helpdesk"}, true
	if role, err := p.Decide(id); err != nil || role != "technician" {
		t.Fatalf("second domain: %q %v", role, err)
	}
}

func TestGroupsOf(t *testing.T) {
	if g, ok := groupsOf([]any{"b", "a", 3, ""}); !ok || strings.Join(g, ",") != "a,b" {
		t.Errorf("list: %v %v", g, ok)
	}
	if g, ok := groupsOf("solo"); !ok || len(g) != 1 {
		t.Errorf("string: %v %v", g, ok)
	}
	if _, ok := groupsOf(nil); ok {
		t.Error("missing claim reported as found")
	}
}
