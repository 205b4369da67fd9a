package client_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/server/store"
)

// enrollDefault enrolls an agent into the default site, straight into the
// relay's store.
func enrollDefault(t *testing.T, st *store.Store, id, hostname string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	tok := store.EnrollToken{ID: store.NewID(), Hash: "hash-" + id, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.CreateEnrollToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.EnrollAgent(ctx, tok.Hash, store.Agent{ID: id, Hostname: hostname, OS: "linux", Arch: "amd64"}, now); err != nil {
		t.Fatal(err)
	}
}

func TestSitesRoundTrip(t *testing.T) {
	adminCfg, _, st := realRelay(t)
	admin := newClient(t, adminCfg)
	const agentA, agentB = "0190c6a8-0000-7000-8000-00000000000a", "0190c6a8-1111-7000-8000-00000000000b"
	enrollDefault(t, st, agentA, "web-01")
	enrollDefault(t, st, agentB, "kiosk")

	org, err := admin.CreateOrganisation(ctx(t), "acme")
	if err != nil || org.Name != "acme" || org.ID == "" {
		t.Fatalf("CreateOrganisation: %+v, %v", org, err)
	}
	if _, err := admin.CreateOrganisation(ctx(t), "acme"); !client.IsStatus(err, http.StatusConflict) ||
		!strings.HasPrefix(err.Error(), "create organisation acme: ") {
		t.Errorf("a second acme: %v", err)
	}
	paris, err := admin.CreateSite(ctx(t), "acme", "paris")
	if err != nil || paris.FullName != "acme/paris" {
		t.Fatalf("CreateSite: %+v, %v", paris, err)
	}
	if _, err := admin.CreateSite(ctx(t), org.ID, "lyon"); err != nil {
		t.Fatalf("CreateSite by organisation ID: %v", err)
	}
	if _, err := admin.CreateSite(ctx(t), "globex", "hq"); !client.IsStatus(err, http.StatusNotFound) {
		t.Errorf("site of an unknown organisation: %v", err)
	}
	orgs, err := admin.Organisations(ctx(t))
	if err != nil || len(orgs) != 2 {
		t.Fatalf("Organisations: %+v, %v", orgs, err)
	}

	ag, err := admin.MoveAgent(ctx(t), "web-01", paris.ID[:13])
	if err != nil || ag.ID != agentA || ag.Site != "acme/paris" || ag.SiteID != paris.ID {
		t.Fatalf("MoveAgent: %+v, %v", ag, err)
	}
	if _, err := admin.MoveAgent(ctx(t), "kiosk", "acme/nowhere"); !client.IsStatus(err, http.StatusNotFound) ||
		!strings.Contains(err.Error(), "move agent kiosk to site acme/nowhere: ") {
		t.Errorf("move to an unknown site: %v", err)
	}
	list, err := admin.AgentsAt(ctx(t), "", "acme/paris")
	if err != nil || len(list) != 1 || list[0].ID != agentA {
		t.Errorf("AgentsAt acme/paris: %+v, %v", list, err)
	}
	if list, err = admin.AgentsAt(ctx(t), "hostname=web-*", "default/default"); err != nil || len(list) != 0 {
		t.Errorf("AgentsAt default with a selector: %+v, %v", list, err)
	}
	if list, err = admin.Agents(ctx(t), ""); err != nil || len(list) != 2 {
		t.Errorf("Agents: %+v, %v", list, err)
	}
	sites, err := admin.Sites(ctx(t))
	if err != nil || len(sites) != 3 {
		t.Fatalf("Sites: %+v, %v", sites, err)
	}
	for _, s := range sites {
		if want := map[string]int{"acme/paris": 1, "acme/lyon": 0, "default/default": 1}[s.FullName]; s.Agents != want {
			t.Errorf("site %s has %d agents, want %d", s.FullName, s.Agents, want)
		}
	}
	if err := admin.DeleteSite(ctx(t), "acme/paris"); !client.IsStatus(err, http.StatusConflict) {
		t.Errorf("DeleteSite of a site with agents: %v", err)
	}
	if err := admin.DeleteSite(ctx(t), "acme/lyon"); err != nil {
		t.Errorf("DeleteSite: %v", err)
	}

	u, err := admin.CreateUser(ctx(t), apiv1.UserRequest{Name: "dana", Role: apiv1.RoleTechnician, Sites: []string{"acme/paris"}})
	if err != nil || !slices.Equal(u.Sites, []string{"acme/paris"}) {
		t.Fatalf("CreateUser with sites: %+v, %v", u, err)
	}
	if u, err = admin.SetUserSites(ctx(t), "dana", []string{"all"}); err != nil || !slices.Equal(u.Sites, []string{"all"}) {
		t.Errorf("SetUserSites all: %+v, %v", u, err)
	}
	if _, err = admin.SetUserSites(ctx(t), "dana", nil); !client.IsStatus(err, http.StatusBadRequest) {
		t.Errorf("SetUserSites with none: %v", err)
	}

	// A token of paris: its audit log is paris's, and it cannot read the
	// head, so an export ends at the newest record it sees.
	tok, err := admin.CreateAPIToken(ctx(t), apiv1.APITokenRequest{Role: apiv1.RoleViewer, Name: "paris", Sites: []string{"acme/paris"}})
	if err != nil || !slices.Equal(tok.Sites, []string{"acme/paris"}) {
		t.Fatalf("CreateAPIToken with sites: %+v, %v", tok, err)
	}
	scopedCfg := adminCfg
	scopedCfg.Token = tok.Token
	scoped := newClient(t, scopedCfg)
	who, err := scoped.Whoami(ctx(t))
	if err != nil || !slices.Equal(who.Sites, []string{"acme/paris"}) {
		t.Errorf("Whoami: %+v, %v", who, err)
	}
	if _, err := scoped.AuditHead(ctx(t)); !client.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("AuditHead as a scoped token: %v", err)
	}
	var seen []audit.Record
	n, err := scoped.EachAudit(ctx(t), client.AuditFilter{}, 0, func(r audit.Record) error {
		seen = append(seen, r)
		return nil
	})
	if err != nil || n == 0 || int(n) != len(seen) {
		t.Fatalf("EachAudit as a scoped token: %d records, %v", n, err)
	}
	for _, r := range seen {
		if r.Detail["site"] != paris.ID {
			t.Errorf("the scoped export holds %s %s (site %q)", r.Action, r.Target, r.Detail["site"])
		}
	}
	recs, err := admin.QueryAudit(ctx(t), client.AuditFilter{Site: "acme/paris"}, client.AuditPage{Limit: 100})
	if err != nil || len(recs) != len(seen) {
		t.Errorf("QueryAudit site=acme/paris as admin: %d records (the scoped export had %d), %v", len(recs), len(seen), err)
	}
	if _, err := scoped.VerifyAudit(ctx(t), nil); err == nil || !strings.Contains(err.Error(), "verifying the chain needs every record") {
		t.Errorf("VerifyAudit as a scoped token: %v", err)
	}
	if _, err := admin.VerifyAudit(ctx(t), nil); err != nil {
		t.Errorf("VerifyAudit as admin: %v", err)
	}
}

func TestPublishToSites(t *testing.T) {
	adminCfg, viewerCfg, _ := realRelay(t)
	admin, viewer := newClient(t, adminCfg), newClient(t, viewerCfg)
	if _, err := admin.CreateOrganisation(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateSite(ctx(t), "acme", "paris"); err != nil {
		t.Fatal(err)
	}
	key := sshKey(t)
	content := []byte("#!/bin/sh\n# patchbay:begin\n# name: flush\n# version: 1.0.0\n# description: flush\n# patchbay:end\necho ok\n")
	path, sig := signed(t, key, t.TempDir(), "flush.sh", content)
	art, created, err := admin.PublishScript(ctx(t), client.Upload{File: bytes.NewReader(content), FileName: path, Signature: sig, Sites: []string{"acme/paris"}})
	if err != nil || !created || !slices.Equal(art.Sites, []string{"acme/paris"}) {
		t.Fatalf("PublishScript to acme/paris: %+v, %v", art, err)
	}
	_, _, err = admin.PublishScript(ctx(t), client.Upload{File: bytes.NewReader(content), FileName: path, Signature: sig, Sites: []string{"mars"}})
	if !client.IsStatus(err, http.StatusNotFound) || !strings.HasPrefix(err.Error(), "publish script flush.sh: ") {
		t.Errorf("PublishScript to an unknown site: %v", err)
	}
	// The viewer token of realRelay reaches every site.
	if arts, err := viewer.Scripts(ctx(t), "flush"); err != nil || len(arts) != 1 || !slices.Equal(arts[0].Sites, []string{"acme/paris"}) {
		t.Errorf("Scripts: %+v, %v", arts, err)
	}
}
