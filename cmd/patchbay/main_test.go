package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/client/clienttest"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
	"github.com/spf13/cobra"
)

// result is what one CLI run produced.
type result struct {
	code           int
	stdout, stderr string
}

// patchbay runs the CLI in-process with the fixed clock and stdin.
func patchbay(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(stdin), &out, &errb)
	a.now = func() time.Time { return fixedNow }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := a.run(ctx, args)
	return result{code, out.String(), errb.String()}
}

// loggedIn starts a real relay (clienttest, clock fixedNow) and saves a
// config for a token of role in a temporary $PATCHBAY_CONFIG: alice's for an
// admin, victor's otherwise. The token's creation is audit record 1.
func loggedIn(t *testing.T, role string) *clienttest.Relay {
	t.Helper()
	relay := clienttest.Start(t, clienttest.Clock(func() time.Time { return fixedNow }))
	name := clienttest.ViewerName
	if role == apiv1.RoleAdmin {
		name = clienttest.AdminName
	}
	path := filepath.Join(t.TempDir(), "config.json")
	t.Setenv(client.ConfigEnv, path)
	if err := client.SaveConfigTo(path, relay.Config(relay.Mint(t, role, name), name, role)); err != nil {
		t.Fatal(err)
	}
	return relay
}

func TestLoginCommand(t *testing.T) {
	relay := clienttest.New(t)
	path := filepath.Join(t.TempDir(), "pb", "config.json")
	t.Setenv(client.ConfigEnv, path)

	r := patchbay(t, "", "login", "--server", relay.URL, "--token", relay.AdminToken, "--ca-fingerprint", relay.Fingerprint)
	if r.code != 0 {
		t.Fatalf("login: exit %d, stderr %q", r.code, r.stderr)
	}
	if want := "Logged in to " + relay.URL + " as alice (admin)\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
	if strings.Contains(r.stdout+r.stderr, relay.AdminToken) {
		t.Error("login printed the token")
	}
	cfg, err := client.LoadConfigFrom(path)
	if err != nil || cfg.Token != relay.AdminToken {
		t.Fatalf("saved config: %+v, %v", cfg, err)
	}

	// A new token from stdin; server and fingerprint come from the saved config.
	r = patchbay(t, relay.ViewerToken+"\n", "login", "--token", "-")
	if r.code != 0 || r.stdout != "Logged in to "+relay.URL+" as victor (viewer)\n" {
		t.Fatalf("re-login: %+v", r)
	}

	other := clienttest.Start(t)
	r = patchbay(t, "", "login", "--server", relay.URL, "--token", relay.AdminToken, "--ca-fingerprint", other.Fingerprint)
	if r.code != 1 || !strings.Contains(r.stderr, "patchbay: log in to "+relay.URL+": connect: server CA fingerprint mismatch") {
		t.Errorf("wrong fingerprint: %+v", r)
	}
	if cfg, _ := client.LoadConfigFrom(path); cfg.Token != relay.ViewerToken {
		t.Error("a failed login changed the saved config")
	}

	r = patchbay(t, "", "whoami", "-o", "json")
	var who apiv1.Whoami
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &who) != nil || who.Name != "victor" {
		t.Errorf("whoami: %+v", r)
	}

	r = patchbay(t, "", "logout")
	if r.code != 0 {
		t.Fatalf("logout: %+v", r)
	}
	r = patchbay(t, "", "agents", "list")
	if r.code != 1 || r.stderr != "patchbay: not logged in: run patchbay login --server URL --token TOKEN --ca-fingerprint sha256:<hex>\n" {
		t.Errorf("after logout: %+v", r)
	}
}

// enrollAgents enrolls the offline and revoked agents of fixtureAgents into
// the relay's store, with their IDs, inventory, tags and times.
func enrollAgents(t *testing.T, relay *clienttest.Relay) {
	t.Helper()
	for _, a := range fixtureAgents() {
		if a.Online {
			a.Online, a.LastSeen = false, ago(5*time.Minute) // only a connected agent is online
		}
		own := map[string]string{}
		for k, v := range a.Tags {
			if _, scoped := a.ScopedTags[k]; !scoped {
				own[k] = v
			}
		}
		sa := store.Agent{ID: a.ID, Hostname: a.Hostname, OS: a.OS, Arch: a.Arch, OSVersion: a.OSVersion, Version: a.Version,
			Users: a.Users, IPs: a.IPs, AgentTags: own}
		if a.LastSeen != nil {
			sa.LastSeen = *a.LastSeen
		}
		if a.RevokedAt != nil {
			sa.RevokedAt = *a.RevokedAt
		}
		relay.Enroll(t, sa, a.ScopedTags)
	}
}

func TestAgentsListCommand(t *testing.T) {
	relay := loggedIn(t, apiv1.RoleViewer)
	enrollAgents(t, relay)

	r := patchbay(t, "", "agents", "list")
	if r.code != 0 {
		t.Fatalf("agents list: %+v", r)
	}
	golden(t, "agents_list_relay.golden", []byte(r.stdout))

	r = patchbay(t, "", "agents", "list", "--target", "os=linux", "-o", "json")
	if r.code != 0 {
		t.Fatalf("agents list -o json: %+v", r)
	}
	if !strings.HasPrefix(r.stdout, "[\n  {\n    \"id\": ") || !strings.HasSuffix(r.stdout, "]\n") {
		t.Errorf("JSON is not two-space indented with a trailing newline:\n%s", r.stdout)
	}
	var got []apiv1.Agent
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range got {
		ids = append(ids, a.ID)
	}
	// The relay sorts by hostname: kiosk-3, then web-01.
	if want := []string{fixtureAgents()[2].ID, fixtureAgents()[0].ID}; !reflect.DeepEqual(ids, want) {
		t.Errorf("JSON agents %q, want %q", ids, want)
	}
	var raw []map[string]any
	_ = json.Unmarshal([]byte(r.stdout), &raw)
	for _, k := range []string{"id", "hostname", "os", "arch", "version", "tags", "online", "last_seen"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("JSON lacks field %q", k)
		}
	}

	r = patchbay(t, "", "agents", "list", "--target", "site=par is")
	if r.code != 1 || !strings.HasPrefix(r.stderr, `patchbay: list agents: selector: term 1 "site=par is"`) {
		t.Errorf("bad selector: %+v", r)
	}

	r = patchbay(t, "", "agents", "show", "web-01")
	if r.code != 0 {
		t.Fatalf("agents show: %+v", r)
	}
	golden(t, "agents_show_relay.golden", []byte(r.stdout))

	r = patchbay(t, "", "agents", "revoke", "web-01")
	if r.code != 1 || !strings.Contains(r.stderr, "patchbay: revoke agent web-01: this needs the admin role") {
		t.Errorf("revoke as viewer: %+v", r)
	}
}

func TestAgentsRevokeCommand(t *testing.T) {
	relay := loggedIn(t, apiv1.RoleAdmin)
	enrollAgents(t, relay)
	r := patchbay(t, "", "agents", "revoke", "LAPTOP-7F3K")
	want := "Revoked agent 0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5f (LAPTOP-7F3K): it was disconnected and the relay will refuse it from now on.\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("revoke: %+v", r)
	}
	if a, err := relay.Store.GetAgent(context.Background(), fixtureAgents()[1].ID); err != nil || a.RevokedAt.IsZero() {
		t.Errorf("the relay did not revoke the agent: %+v, %v", a, err)
	}
	r = patchbay(t, "", "agents", "revoke", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, `no agent with ID, ID prefix or hostname "nope"`) {
		t.Errorf("revoke unknown: %+v", r)
	}
}

func TestTokensCommands(t *testing.T) {
	relay := loggedIn(t, apiv1.RoleAdmin)
	ctx := context.Background()
	r := patchbay(t, "", "tokens", "create", "--tags", "site=paris,env=prod", "--uses", "0", "--ttl", "7d")
	if r.code != 0 {
		t.Fatalf("tokens create: %+v", r)
	}
	secret := strings.TrimSuffix(r.stdout, "\n")
	if !strings.HasPrefix(secret, "pbe_") || strings.ContainsAny(secret, " \n") {
		t.Errorf("stdout = %q, want the token alone", r.stdout)
	}
	toks, err := relay.Store.ListEnrollTokens(ctx)
	if err != nil || len(toks) != 1 {
		t.Fatalf("enrollment tokens stored: %+v, %v", toks, err)
	}
	tok := toks[0]
	for _, want := range []string{
		"Enrollment token " + tok.ID + ": unlimited uses, expires ",
		"tags env=prod,site=paris",
		"patchbay-agent enroll --server " + relay.URL + " --token " + secret + " --ca-fingerprint " + relay.Fingerprint + "\n",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}
	if tok.UsesAllowed != 0 || tok.Tags["site"] != "paris" {
		t.Errorf("relay got %+v", tok)
	}

	r = patchbay(t, "", "tokens", "create")
	toks, err = relay.Store.ListEnrollTokens(ctx)
	if r.code != 0 || err != nil || len(toks) != 2 {
		t.Fatalf("default uses: %+v %+v %v", r, toks, err)
	}
	second := toks[0]
	if second.ID == tok.ID {
		second = toks[1]
	}
	if second.UsesAllowed != 1 {
		t.Errorf("default uses: %+v", second)
	}

	r = patchbay(t, "", "tokens", "list")
	if r.code != 0 || strings.Contains(r.stdout, "pbe_") || !strings.Contains(r.stdout, second.ID[:8]) {
		t.Errorf("tokens list: %+v", r)
	}
	r = patchbay(t, "", "tokens", "revoke", tok.ID)
	toks, _ = relay.Store.ListEnrollTokens(ctx)
	for _, et := range toks {
		if et.RevokedAt.IsZero() != (et.ID != tok.ID) {
			t.Errorf("tokens revoke %s: %+v; stored %+v", tok.ID, r, et)
		}
	}

	for _, args := range [][]string{
		{"tokens", "create", "--uses", "-1"},
		{"tokens", "create", "--ttl", "soon"},
		{"tokens", "create", "--tags", "site"},
		{"tokens", "create", "--uses", "many"},
		{"tokens", "revoke"},
		{"api-tokens", "create", "--role", "root", "--name", "x"},
		{"api-tokens", "create", "--role", "viewer"},
		{"audit", "list", "--limit", "0"},
		{"audit", "verify", "--anchor", "12"},
	} {
		r := patchbay(t, "", args...)
		if r.code != 2 || !strings.Contains(r.stderr, "--help' for usage") {
			t.Errorf("%q: exit %d, stderr %q; want a usage error", args, r.code, r.stderr)
		}
	}
}

func TestAPITokensCommands(t *testing.T) {
	relay := loggedIn(t, apiv1.RoleAdmin)
	r := patchbay(t, "", "api-tokens", "create", "--role", "technician", "--name", "dana.scully", "--ttl", "90d")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "pbt_") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("api-tokens create: %+v", r)
	}
	var dana store.APIToken
	toks, err := relay.Store.ListAPITokens(context.Background())
	for _, tok := range toks {
		if tok.Name == "dana.scully" {
			dana = tok
		}
	}
	if err != nil || dana.ID == "" || dana.Role != apiv1.RoleTechnician {
		t.Fatalf("stored API tokens: %+v, %v", toks, err)
	}
	if !strings.Contains(r.stderr, "API token "+dana.ID+` for "dana.scully" (technician), expires `) ||
		!strings.Contains(r.stderr, "patchbay login --server "+relay.URL) {
		t.Errorf("stderr = %q", r.stderr)
	}
	r = patchbay(t, "", "api-tokens", "list", "-o", "json")
	var listed []apiv1.APIToken
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &listed) != nil || len(listed) != 2 || listed[0].Token != "" || listed[1].Token != "" {
		t.Errorf("api-tokens list: %+v", r)
	}
	r = patchbay(t, "", "api-tokens", "revoke", dana.ID)
	toks, _ = relay.Store.ListAPITokens(context.Background())
	for _, tok := range toks {
		if tok.RevokedAt.IsZero() != (tok.ID != dana.ID) {
			t.Errorf("api-tokens revoke %s: %+v; stored %+v", dana.ID, r, tok)
		}
	}
}

func TestAuditCommands(t *testing.T) {
	relay := loggedIn(t, apiv1.RoleViewer) // record 1: its creation
	for i := range 119 {
		relay.AppendAudit(t, fixedNow.Add(time.Duration(i)*time.Minute), "token:at-1 (admin)", "login", "at-1", map[string]string{"i": string(rune('a' + i%26))})
	}

	r := patchbay(t, "", "audit", "list")
	if r.code != 0 {
		t.Fatalf("audit list: %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 51 || !strings.HasPrefix(lines[1], "71 ") || !strings.HasPrefix(lines[50], "120 ") {
		t.Errorf("audit list shows %d lines, first %q, last %q; want the newest 50", len(lines), lines[1], lines[len(lines)-1])
	}
	r = patchbay(t, "", "audit", "list", "--after", "0", "--limit", "3", "-o", "json")
	var recs []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &recs) != nil || len(recs) != 3 || recs[0]["seq"] != 1.0 || recs[0]["hash"] == "" {
		t.Errorf("audit list --after 0 -o json: %+v", r)
	}

	r = patchbay(t, "", "audit", "verify")
	head := relay.Record(t, 120).Hash
	if r.code != 0 || r.stdout != "audit log verified: 120 records, head 120 "+head[:16]+"\n" {
		t.Fatalf("audit verify: %+v", r)
	}
	r = patchbay(t, "", "audit", "verify", "--anchor", "100:"+relay.Record(t, 100).Hash[:20])
	if r.code != 0 || !strings.Contains(r.stderr, "1 anchor(s) matched") {
		t.Errorf("verify with a good anchor: %+v", r)
	}
	r = patchbay(t, "", "audit", "verify", "--anchor", "100:"+relay.Record(t, 99).Hash)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "audit log BROKEN at record 100: hash ") {
		t.Errorf("verify with a wrong anchor: %+v", r)
	}
	r = patchbay(t, "", "audit", "verify", "--anchor", "500:"+head)
	if r.code != 1 || r.stderr != "audit log BROKEN at record 500: anchored record is missing (log ends at 120)\n" {
		t.Errorf("verify with an anchor beyond the log: %+v", r)
	}

	relay.Tamper(t, `UPDATE audit_log SET target = 'at-2' WHERE seq = 42`)
	r = patchbay(t, "", "audit", "verify")
	if r.code != 1 || r.stdout != "" || r.stderr != "audit log BROKEN at record 42: hash does not match the record's content\n" {
		t.Errorf("tampered log: %+v", r)
	}
}

func TestUsageAndHelp(t *testing.T) {
	t.Setenv(client.ConfigEnv, filepath.Join(t.TempDir(), "none.json"))
	for _, args := range [][]string{
		{"frobnicate"},
		{"agents", "lst"},
		{"agents", "list", "-o", "yaml"},
		{"agents", "list", "--nope"},
		{"agents", "show"},
		{"agents", "show", "a", "b"},
		{"--log-level", "loud", "agents", "list"},
		{"login", "--token", "x"},
	} {
		r := patchbay(t, "", args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "patchbay: ") {
			t.Errorf("%q: exit %d, stderr %q; want 2", args, r.code, r.stderr)
		}
	}
	// Every command has a summary, a description and an example.
	root := newApp(nil, nil, nil).rootCmd()
	for _, c := range allCommands(root) {
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%q lacks a summary, description or example", c.CommandPath())
		}
	}
	r := patchbay(t, "", "agents")
	if r.code != 0 || !strings.Contains(r.stdout, "Available Commands:") {
		t.Errorf("patchbay agents: %+v", r)
	}
	r = patchbay(t, "", "agents", "list", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "key notin (v1,v2,...)") {
		t.Errorf("agents list --help lacks the selector help: %+v", r)
	}
	if _, err := os.Stat(os.Getenv(client.ConfigEnv)); err == nil {
		t.Error("a failed command created a config file")
	}
}

// allCommands returns c and every command below it.
func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}
