package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
)

// useToken switches the saved login to another token of the same relay.
func useToken(t *testing.T, secret, name, role string) {
	t.Helper()
	path := os.Getenv(client.ConfigEnv)
	cfg, err := client.LoadConfigFrom(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Token, cfg.Name, cfg.Role = secret, name, role
	if err := client.SaveConfigTo(path, cfg); err != nil {
		t.Fatal(err)
	}
}

// mustRun runs the CLI and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := patchbay(t, "", args...)
	if r.code != 0 {
		t.Fatalf("%q: exit %d\nstdout %s\nstderr %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// wantFail runs the CLI and checks its exit code and that stderr holds msg.
func wantFail(t *testing.T, code int, msg string, args ...string) {
	t.Helper()
	r := patchbay(t, "", args...)
	if r.code != code || !strings.Contains(r.stderr, msg) {
		t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", args, r.code, r.stderr, code, msg)
	}
}

// siteIDs reads the ID column of the sites table, by SITE.
func siteIDs(t *testing.T, table string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if f := strings.Fields(lines[0]); !slices.Equal(f, []string{"ID", "SITE", "AGENTS"}) {
		t.Fatalf("sites table header %q", lines[0])
	}
	ids := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		ids[f[1]] = f[0]
	}
	return ids
}

func TestSitesOrgsAndMoves(t *testing.T) {
	st := realRelay(t, apiv1.RoleAdmin)
	enrollFixture(t, st, map[string]string{agentA: "web-01", agentB: "kiosk", agentC: "till-1"})

	r := mustRun(t, "orgs", "create", "acme")
	if !strings.HasPrefix(r.stdout, "Created organisation acme, ID ") || !strings.Contains(r.stderr, "patchbay sites create acme NAME") {
		t.Errorf("orgs create: %+v", r)
	}
	wantFail(t, 1, `an organisation named "acme" exists: patchbay orgs list shows them`, "orgs", "create", "acme")
	mustRun(t, "sites", "create", "acme", "paris")
	r = mustRun(t, "sites", "create", "acme/lyon", "-o", "json")
	var lyon apiv1.Site
	if json.Unmarshal([]byte(r.stdout), &lyon) != nil || lyon.FullName != "acme/lyon" || lyon.Organisation != "acme" {
		t.Errorf("sites create -o json: %+v", r)
	}
	wantFail(t, 2, `site "acme": want ORG NAME or ORG/NAME`, "sites", "create", "acme")
	wantFail(t, 2, "needs ORG NAME or ORG/NAME (got 3 arguments)", "sites", "create", "a", "b", "c")
	wantFail(t, 1, `no organisation "globex": create it first (patchbay orgs create NAME)`, "sites", "create", "globex/hq")

	r = mustRun(t, "orgs", "list")
	if !hasLine(r.stdout, "acme", " 2 ") || !hasLine(r.stdout, "default", " 1 ") {
		t.Errorf("orgs list:\n%s", r.stdout)
	}

	// The table's short IDs tell the sites apart and name them in commands.
	r = mustRun(t, "sites", "list")
	ids := siteIDs(t, r.stdout)
	if len(ids) != 3 || ids["acme/paris"] == "" || ids["acme/lyon"] == "" || ids["default/default"] == "" {
		t.Fatalf("sites list:\n%s", r.stdout)
	}
	var sites []apiv1.Site
	r = mustRun(t, "sites", "list", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &sites); err != nil || len(sites) != 3 {
		t.Fatalf("sites list -o json: %v\n%s", err, r.stdout)
	}
	for _, s := range sites {
		if p := ids[s.FullName]; len(p) < 8 || len(p) >= len(s.ID) || !strings.HasPrefix(s.ID, p) {
			t.Errorf("site %s (%s) is shown as %q", s.FullName, s.ID, p)
		}
	}

	// An enrollment token for a site.
	r = mustRun(t, "tokens", "create", "--site", "acme/paris", "--uses", "5")
	if !strings.Contains(r.stderr, ", site acme/paris.\n") {
		t.Errorf("tokens create --site: %+v", r)
	}
	r = mustRun(t, "tokens", "list")
	if !strings.Contains(r.stdout, "SITE") || !hasLine(r.stdout, "acme/paris", "0/5") {
		t.Errorf("tokens list:\n%s", r.stdout)
	}
	wantFail(t, 1, `site "mars": no such site: patchbay sites list shows the sites you reach`, "tokens", "create", "--site", "mars")

	// Agents move, named as the tables print them.
	r = mustRun(t, "agents", "move", "web-01", "--site", ids["acme/paris"])
	if r.stdout != "Agent "+agentA+" (web-01) is in site acme/paris.\n" {
		t.Errorf("agents move: %+v", r)
	}
	mustRun(t, "agents", "move", "0190c6a8-1", "--site", "LYON")
	wantFail(t, 2, "--site is required", "agents", "move", "till-1")
	wantFail(t, 1, `site "nowhere": no such site`, "agents", "move", "till-1", "--site", "nowhere")
	r = mustRun(t, "agents", "list")
	if !hasLine(r.stdout, agentA, "web-01", "acme/paris") || !hasLine(r.stdout, agentB, "kiosk", "acme/lyon") ||
		!hasLine(r.stdout, agentC, "till-1", "default/default") || !strings.Contains(r.stdout, " SITE ") {
		t.Errorf("agents list:\n%s", r.stdout)
	}
	r = mustRun(t, "agents", "list", "--site", "acme/paris", "-o", "json")
	var agents []apiv1.Agent
	if json.Unmarshal([]byte(r.stdout), &agents) != nil || len(agents) != 1 || agents[0].ID != agentA || agents[0].Site != "acme/paris" {
		t.Errorf("agents list --site acme/paris: %+v", r)
	}
	r = mustRun(t, "agents", "show", "kiosk")
	if !strings.Contains(r.stdout, "Site:           acme/lyon\n") {
		t.Errorf("agents show:\n%s", r.stdout)
	}
	r = mustRun(t, "sites", "list")
	if !hasLine(r.stdout, "acme/paris", " 1") || !hasLine(r.stdout, "default/default", " 1") {
		t.Errorf("sites list counts:\n%s", r.stdout)
	}

	// Deleting: refused while agents or tokens belong to the site.
	wantFail(t, 1, "move its agents (patchbay agents move)", "sites", "delete", "acme/paris")
	wantFail(t, 1, "default", "sites", "delete", "default/default")
	r = mustRun(t, "sites", "create", "acme", "closed", "-o", "json")
	var closed apiv1.Site
	if err := json.Unmarshal([]byte(r.stdout), &closed); err != nil {
		t.Fatal(err)
	}
	short := siteIDs(t, mustRun(t, "sites", "list").stdout)["acme/closed"]
	if r := mustRun(t, "sites", "delete", short); r.stdout != "Deleted site "+short+".\n" {
		t.Errorf("sites delete: %+v", r)
	}
	if _, ok := siteIDs(t, mustRun(t, "sites", "list").stdout)["acme/closed"]; ok {
		t.Error("the deleted site is still listed")
	}

	// Grants: users and tokens of no user.
	r = mustRun(t, "users", "create", "dana", "--role", "technician", "--site", "acme/paris", "--site", ids["acme/lyon"])
	if !strings.Contains(r.stderr, "They reach sites acme/") {
		t.Errorf("users create --site: %+v", r)
	}
	r = mustRun(t, "users", "list")
	if !strings.Contains(r.stdout, "SITES") || !hasLine(r.stdout, "dana", "technician", "acme/lyon", "acme/paris") {
		t.Errorf("users list:\n%s", r.stdout)
	}
	r = mustRun(t, "users", "sites", "dana", "--site", "acme/paris")
	if r.stdout != "User dana now reaches site acme/paris.\n" {
		t.Errorf("users sites: %+v", r)
	}
	r = mustRun(t, "users", "show", "dana", "-o", "json")
	var dana apiv1.User
	if json.Unmarshal([]byte(r.stdout), &dana) != nil || !slices.Equal(dana.Sites, []string{"acme/paris"}) {
		t.Errorf("users show -o json: %+v", r)
	}
	r = mustRun(t, "users", "create", "soc", "--role", "auditor", "--site", "all")
	if !hasLine(mustRun(t, "users", "show", "soc").stdout, "soc", "auditor", "all") {
		t.Errorf("users create --site all: %+v", r)
	}
	r = mustRun(t, "users", "set-role", "dana", "auditor")
	if r.stdout != "User dana is now auditor.\n" || !hasLine(mustRun(t, "users", "show", "dana").stdout, "dana", "auditor") {
		t.Errorf("users set-role: %+v", r)
	}
	wantFail(t, 1, `role "boss"`, "users", "set-role", "dana", "boss")
	wantFail(t, 2, "want USER and a role", "users", "set-role", "dana")
	wantFail(t, 2, "--site is required", "users", "sites", "dana")
	wantFail(t, 2, "--site all means every site: give it alone", "users", "sites", "dana", "--site", "all,acme/paris")
	wantFail(t, 2, "empty site name", "users", "create", "x", "--role", "viewer", "--site", "acme/paris,")

	r = mustRun(t, "api-tokens", "create", "--role", "technician", "--name", "paris-tech", "--site", "acme/paris")
	parisTech := strings.TrimSpace(r.stdout)
	if !strings.Contains(r.stderr, "It reaches site acme/paris.") {
		t.Errorf("api-tokens create --site: %+v", r)
	}

	// The audit log by site.
	r = mustRun(t, "audit", "list", "--site", "acme/paris", "-o", "json")
	var recs []audit.Record
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, rec := range recs {
		actions = append(actions, rec.Action)
	}
	if !slices.Contains(actions, "agent.move") || !slices.Contains(actions, "enroll-token.create") || slices.Contains(actions, "user.create") {
		t.Errorf("audit list --site acme/paris: actions %v", actions)
	}
	r = mustRun(t, "audit", "export", "--site", ids["acme/lyon"], "--action", "agent.*", "-o", "jsonl")
	if n := strings.Count(r.stdout, "\n"); n != 1 || !strings.Contains(r.stdout, `"agent.move"`) || !strings.Contains(r.stdout, agentB) {
		t.Errorf("audit export --site acme/lyon: %+v", r)
	}

	// A technician of one site sees that site only, and the rest not at all.
	useToken(t, parisTech, "paris-tech", apiv1.RoleTechnician)
	r = mustRun(t, "whoami")
	if !strings.Contains(r.stdout, "Sites:           acme/paris\n") {
		t.Errorf("whoami:\n%s", r.stdout)
	}
	if ids := siteIDs(t, mustRun(t, "sites", "list").stdout); len(ids) != 1 || ids["acme/paris"] == "" {
		t.Errorf("sites list as paris-tech: %v", ids)
	}
	r = mustRun(t, "agents", "list", "-o", "json")
	if json.Unmarshal([]byte(r.stdout), &agents) != nil || len(agents) != 1 || agents[0].ID != agentA {
		t.Errorf("agents list as paris-tech: %s", r.stdout)
	}
	wantFail(t, 1, `no agent with ID, ID prefix or hostname "kiosk"`, "agents", "show", "kiosk")
	wantFail(t, 1, `site "acme/lyon": no such site`, "agents", "list", "--site", "acme/lyon")
	wantFail(t, 1, `site "acme/lyon": no such site`, "audit", "list", "--site", "acme/lyon")
	wantFail(t, 1, "this needs the admin role", "orgs", "list")

	// Their audit log: only paris's records (the head is refused to them).
	for _, args := range [][]string{{"audit", "list", "-o", "json"}, {"audit", "list", "--after", "0", "-o", "json"}} {
		r = mustRun(t, args...)
		if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) == 0 {
			t.Fatalf("%q: %v %+v", args, err, r)
		}
		for _, rec := range recs {
			if rec.Detail["site"] != ids["acme/paris"] && !strings.HasPrefix(rec.Detail["site"], ids["acme/paris"]) {
				t.Errorf("%q as paris-tech shows %s %s (site %q)", args, rec.Action, rec.Target, rec.Detail["site"])
			}
		}
	}
	r = mustRun(t, "audit", "export", "-o", "jsonl")
	if n := strings.Count(r.stdout, "\n"); n != len(recs) || !strings.Contains(r.stderr, "Exported ") {
		t.Errorf("audit export as paris-tech: %d records, want %d: %+v", n, len(recs), r)
	}
	wantFail(t, 1, "patchbay: verify audit log: paris-tech reaches only some sites (acme/paris), and verifying the chain needs every record", "audit", "verify")
}

func TestPublishToSites(t *testing.T) {
	realRelay(t, apiv1.RoleAdmin)
	mustRun(t, "orgs", "create", "acme")
	mustRun(t, "sites", "create", "acme", "paris")
	mustRun(t, "sites", "create", "acme", "lyon")
	key := newKey(t, "")
	dir := t.TempDir()
	script := filepath.Join(dir, "flush.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n# patchbay:begin\n# name: flush\n# version: 1.0.0\n# description: flush\n# patchbay:end\necho ok\n"), 0o644)
	mustRun(t, "scripts", "sign", "--key", key, script)
	r := mustRun(t, "scripts", "publish", script, "--site", "acme/paris", "--site", "acme/lyon")
	if !strings.HasPrefix(r.stderr, "Published script flush 1.0.0 for any to sites acme/") || !strings.Contains(r.stdout, "Sites:          acme/") {
		t.Errorf("publish --site: %+v", r)
	}
	wantFail(t, 1, `site "mars": no such site`, "scripts", "publish", script, "--site", "mars")
	r = mustRun(t, "scripts", "list")
	if !strings.Contains(r.stdout, "SITES") || !hasLine(r.stdout, "flush", "1.0.0", "acme/lyon", "acme/paris") {
		t.Errorf("scripts list:\n%s", r.stdout)
	}
	other := filepath.Join(dir, "other.sh")
	os.WriteFile(other, []byte("#!/bin/sh\n# patchbay:begin\n# name: other\n# version: 1.0.0\n# description: other\n# patchbay:end\necho other\n"), 0o644)
	mustRun(t, "scripts", "sign", "--key", key, other)
	mustRun(t, "scripts", "publish", other, "--site", "lyon")

	// A token of paris sees what is published to paris, not to lyon alone.
	r = mustRun(t, "api-tokens", "create", "--role", "viewer", "--name", "paris-viewer", "--site", "acme/paris")
	useToken(t, strings.TrimSpace(r.stdout), "paris-viewer", apiv1.RoleViewer)
	var arts []apiv1.Artifact
	r = mustRun(t, "scripts", "list", "-o", "json")
	if json.Unmarshal([]byte(r.stdout), &arts) != nil || len(arts) != 1 || arts[0].Name != "flush" {
		t.Errorf("scripts list as paris-viewer: %s", r.stdout)
	}
	wantFail(t, 1, "no script with that name", "scripts", "show", "other")
}

func TestUniquePrefixLen(t *testing.T) {
	for _, tt := range []struct {
		ids  []string
		want int
	}{
		{nil, 0},
		{[]string{"0190c6a8-7d2e-7c4b"}, 8},
		{[]string{"0190c6a8-7d2e-7c4b", "0190c6a9-7d2e-7c4b"}, 8},
		// Never a prefix ending in "-": 9 would, so 10.
		{[]string{"0190c6a8-7d2e-7c4b", "0190c6a8-8d2e-7c4b"}, 10},
		{[]string{"0190c6a8-7d2e-7c4b", "0190c6a8-7d2f-7c4b"}, 13},
		{[]string{"00000000-0000-7000-8000-000000000002", "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e"}, 8},
	} {
		if got := uniquePrefixLen(tt.ids, 8); got != tt.want {
			t.Errorf("uniquePrefixLen(%q) = %d, want %d", tt.ids, got, tt.want)
		}
	}
}

func TestSitesHelp(t *testing.T) {
	t.Setenv(client.ConfigEnv, filepath.Join(t.TempDir(), "none.json"))
	r := patchbay(t, "", "--help")
	for _, want := range []string{"\n  orgs ", "\n  sites "} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("patchbay --help lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"sites", "list", "--help"}, "ORG/SITE"},
		{[]string{"agents", "list", "--help"}, "--site string"},
		{[]string{"agents", "move", "--help"}, "--site string"},
		{[]string{"tokens", "create", "--help"}, "--site string"},
		{[]string{"users", "create", "--help"}, "--site stringArray"},
		{[]string{"users", "sites", "--help"}, "--site stringArray"},
		{[]string{"api-tokens", "create", "--help"}, "--site stringArray"},
		{[]string{"audit", "list", "--help"}, "--site string"},
		{[]string{"audit", "export", "--help"}, "--site string"},
		{[]string{"plugins", "publish", "--help"}, "--site stringArray"},
		{[]string{"scripts", "publish", "--help"}, "--site stringArray"},
	} {
		r := patchbay(t, "", tt.args...)
		if r.code != 0 || !strings.Contains(r.stdout, tt.want) {
			t.Errorf("%q lacks %q:\n%s", tt.args, tt.want, r.stdout)
		}
	}
}
