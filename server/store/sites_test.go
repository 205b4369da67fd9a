package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/audit"
)

// siteFixture is a store with organisations Acme (sites HQ and Lyon) and
// Globex (site Main), one agent in each of HQ and Main with the same
// hostname, and the scopes of each side.
type siteFixture struct {
	s                   *Store
	acme, globex        Organisation
	hq, lyon, main      Site
	hqAgent, mainAgent  Agent
	hqScope, mainScope  Scope
	bothScope, anyScope Scope
}

func newSiteFixture(t *testing.T) *siteFixture {
	t.Helper()
	ctx := context.Background()
	s, _ := newStore(t)
	f := &siteFixture{s: s}
	f.acme = Organisation{ID: NewID(), Name: "Acme", CreatedAt: ts}
	f.globex = Organisation{ID: NewID(), Name: "Globex", CreatedAt: ts}
	for _, o := range []Organisation{f.acme, f.globex} {
		if err := s.CreateOrganisation(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	f.hq = Site{ID: NewID(), OrgID: f.acme.ID, OrgName: "Acme", Name: "HQ", CreatedAt: ts}
	f.lyon = Site{ID: NewID(), OrgID: f.acme.ID, OrgName: "Acme", Name: "Lyon", CreatedAt: ts}
	f.main = Site{ID: NewID(), OrgID: f.globex.ID, OrgName: "Globex", Name: "Main", CreatedAt: ts}
	for _, site := range []Site{f.hq, f.lyon, f.main} {
		if err := s.CreateSite(ctx, site); err != nil {
			t.Fatal(err)
		}
	}
	enroll := func(site Site) Agent {
		t.Helper()
		tok := mkToken(t, s, "tok-"+site.ID, func(e *EnrollToken) { e.SiteID = site.ID })
		a, _, err := s.EnrollAgent(ctx, tok.Hash, Agent{ID: NewID(), Hostname: "kiosk-01", AgentTags: map[string]string{"role": "kiosk"}}, ts)
		if err != nil {
			t.Fatal(err)
		}
		if a.SiteID != site.ID {
			t.Fatalf("agent enrolled with %s's token is in site %s", site.FullName(), a.SiteID)
		}
		return a
	}
	f.hqAgent, f.mainAgent = enroll(f.hq), enroll(f.main)
	f.hqScope, f.mainScope = ScopeOf([]string{f.hq.ID}), ScopeOf([]string{f.main.ID})
	f.bothScope, f.anyScope = ScopeOf([]string{f.hq.ID, f.main.ID}), ScopeOf([]string{AllSites})
	return f
}

func siteIDs(sites []Site) []string {
	out := make([]string, len(sites))
	for i, s := range sites {
		out[i] = s.ID
	}
	return out
}

func TestSiteNamesConflict(t *testing.T) {
	ctx := context.Background()
	f := newSiteFixture(t)
	if err := f.s.CreateOrganisation(ctx, Organisation{ID: NewID(), Name: "ACME", CreatedAt: ts}); !errors.Is(err, ErrNameTaken) {
		t.Errorf("an organisation named like another in another case: %v, want ErrNameTaken", err)
	}
	if err := f.s.CreateSite(ctx, Site{ID: NewID(), OrgID: f.acme.ID, Name: "hq", CreatedAt: ts}); !errors.Is(err, ErrNameTaken) {
		t.Errorf("a second site hq in Acme: %v, want ErrNameTaken", err)
	}
	// The same site name in another organisation is another site.
	if err := f.s.CreateSite(ctx, Site{ID: NewID(), OrgID: f.globex.ID, Name: "HQ", CreatedAt: ts}); err != nil {
		t.Errorf("site HQ of Globex: %v", err)
	}
	if err := f.s.CreateSite(ctx, Site{ID: NewID(), OrgID: NewID(), Name: "X", CreatedAt: ts}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a site of no organisation: %v, want ErrNotFound", err)
	}
	orgs, err := f.s.ListOrganisations(ctx)
	if err != nil || len(orgs) != 3 { // default, Acme, Globex
		t.Fatalf("organisations: %+v %v", orgs, err)
	}
	names, err := f.s.SiteNames(ctx)
	if err != nil || names[f.hq.ID] != "Acme/HQ" || names[f.main.ID] != "Globex/Main" || names[DefaultSiteID] != "default/default" {
		t.Errorf("site names: %v %v", names, err)
	}
}

func TestListSitesScope(t *testing.T) {
	ctx := context.Background()
	f := newSiteFixture(t)
	for _, c := range []struct {
		name  string
		scope Scope
		want  []string
	}{
		{"HQ", f.hqScope, []string{f.hq.ID}},
		{"Main", f.mainScope, []string{f.main.ID}},
		{"HQ and Main", f.bothScope, []string{f.hq.ID, f.main.ID}},
		{"every site", f.anyScope, []string{DefaultSiteID, f.hq.ID, f.lyon.ID, f.main.ID}},
		{"nothing (zero Scope)", Scope{}, nil},
		{"a site that does not exist", ScopeOf([]string{NewID()}), nil},
	} {
		sites, err := f.s.ListSites(ctx, c.scope)
		if err != nil {
			t.Fatal(err)
		}
		got, want := siteIDs(sites), slices.Clone(c.want)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: sites %v, want %v", c.name, got, want)
		}
	}
	if sites, _ := f.s.ListSites(ctx, f.hqScope); len(sites) != 1 || sites[0].FullName() != "Acme/HQ" {
		t.Errorf("HQ listed as %+v", sites)
	}
}

func TestScopeHas(t *testing.T) {
	f := newSiteFixture(t)
	if !f.hqScope.Has(f.hq.ID) || f.hqScope.Has(f.main.ID) || (Scope{}).Has(f.hq.ID) || !f.anyScope.Has(NewID()) {
		t.Error("Scope.Has")
	}
	for _, c := range []struct {
		scope Scope
		sites []string
		want  bool
	}{
		{f.hqScope, []string{f.hq.ID}, true},
		{f.hqScope, []string{f.hq.ID, f.main.ID}, false},
		{f.bothScope, []string{f.hq.ID, f.main.ID}, true},
		{f.hqScope, nil, false}, // a job of no site is seen only by who reaches every site
		{f.anyScope, nil, true},
	} {
		if got := c.scope.HasAll(c.sites); got != c.want {
			t.Errorf("%+v.HasAll(%v) = %v", c.scope, c.sites, got)
		}
	}
}

func TestDeleteSite(t *testing.T) {
	ctx := context.Background()
	f := newSiteFixture(t)
	if err := f.s.DeleteSite(ctx, DefaultSiteID); !errors.Is(err, ErrSiteInUse) {
		t.Errorf("delete the default site: %v, want ErrSiteInUse", err)
	}
	if err := f.s.DeleteSite(ctx, f.hq.ID); !errors.Is(err, ErrSiteInUse) {
		t.Errorf("delete a site with an agent (and its token): %v, want ErrSiteInUse", err)
	}
	// A site with only an enrollment token is in use too.
	mkToken(t, f.s, "lyon-token", func(e *EnrollToken) { e.SiteID = f.lyon.ID })
	if err := f.s.DeleteSite(ctx, f.lyon.ID); !errors.Is(err, ErrSiteInUse) {
		t.Errorf("delete a site with an enrollment token: %v, want ErrSiteInUse", err)
	}
	empty := Site{ID: NewID(), OrgID: f.acme.ID, Name: "Paris", CreatedAt: ts}
	if err := f.s.CreateSite(ctx, empty); err != nil {
		t.Fatal(err)
	}
	u := User{ID: NewID(), Name: "paula", Role: "technician", CreatedAt: ts, Sites: []string{empty.ID, f.hq.ID}}
	if err := f.s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteSite(ctx, empty.ID); err != nil {
		t.Fatalf("delete an empty site: %v", err)
	}
	if err := f.s.DeleteSite(ctx, empty.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete it twice: %v, want ErrNotFound", err)
	}
	// Its grants went with it.
	if got, err := f.s.UserSites(ctx, u.ID); err != nil || !slices.Equal(got, []string{f.hq.ID}) {
		t.Errorf("paula's sites after the delete: %v %v", got, err)
	}
	// The name is free again.
	if err := f.s.CreateSite(ctx, Site{ID: NewID(), OrgID: f.acme.ID, Name: "Paris", CreatedAt: ts}); err != nil {
		t.Errorf("a new Paris: %v", err)
	}
}

func TestSetAgentSite(t *testing.T) {
	ctx := context.Background()
	f := newSiteFixture(t)
	if err := f.s.SetAgentSite(ctx, f.mainAgent.ID, NewID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("move to a site that does not exist: %v", err)
	}
	if err := f.s.SetAgentSite(ctx, NewID(), f.hq.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("move an agent that does not exist: %v", err)
	}
	if found, _ := f.s.FindAgents(ctx, f.hqScope, "kiosk-01", 10); len(found) != 1 || found[0].ID != f.hqAgent.ID {
		t.Fatalf("HQ's kiosk-01 before the move: %+v", found)
	}
	if err := f.s.SetAgentSite(ctx, f.mainAgent.ID, f.hq.ID); err != nil {
		t.Fatal(err)
	}
	a, err := f.s.GetAgent(ctx, f.mainAgent.ID)
	if err != nil || a.SiteID != f.hq.ID {
		t.Fatalf("moved agent: site %s, %v", a.SiteID, err)
	}
	if found, _ := f.s.FindAgents(ctx, f.hqScope, "kiosk-01", 10); len(found) != 2 {
		t.Errorf("HQ's kiosk-01 after the move: %d agents, want 2", len(found))
	}
	if found, _ := f.s.FindAgents(ctx, f.mainScope, f.mainAgent.ID, 10); len(found) != 0 {
		t.Errorf("Main still finds the moved agent: %+v", found)
	}
}

func TestUserSitesAndTokens(t *testing.T) {
	ctx := context.Background()
	f := newSiteFixture(t)
	u := User{ID: NewID(), Name: "alice", Role: "technician", CreatedAt: ts, Sites: []string{f.hq.ID, f.hq.ID}}
	if err := f.s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.s.UserSites(ctx, u.ID); !slices.Equal(got, []string{f.hq.ID}) {
		t.Errorf("alice's sites: %v", got)
	}
	// A token of the user has the user's sites, whatever it was given.
	tok := APIToken{ID: NewID(), Hash: "alice-token", Role: "technician", Name: "alice", CreatedAt: ts, UserID: u.ID, Kind: KindSession, Sites: []string{AllSites}}
	bot := APIToken{ID: NewID(), Hash: "bot-token", Role: "technician", Name: "bot", CreatedAt: ts, Sites: []string{f.main.ID}}
	for _, x := range []APIToken{tok, bot} {
		if err := f.s.CreateAPIToken(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(hash string) []string {
		t.Helper()
		got, err := f.s.LookupAPIToken(ctx, hash, ts.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return got.Sites
	}
	if got := lookup("alice-token"); !slices.Equal(got, []string{f.hq.ID}) {
		t.Errorf("alice's token reaches %v, want her sites", got)
	}
	if got := lookup("bot-token"); !slices.Equal(got, []string{f.main.ID}) {
		t.Errorf("the bot's token reaches %v, want Main", got)
	}
	// Changing the user's grants changes what their token reaches at once.
	if err := f.s.SetUserSites(ctx, u.ID, []string{f.main.ID, f.lyon.ID}); err != nil {
		t.Fatal(err)
	}
	want := []string{f.main.ID, f.lyon.ID}
	slices.Sort(want)
	if got := lookup("alice-token"); !slices.Equal(got, want) {
		t.Errorf("alice's token after her grants changed: %v, want %v", got, want)
	}
	if err := f.s.SetUserSites(ctx, u.ID, []string{AllSites}); err != nil {
		t.Fatal(err)
	}
	if got := lookup("alice-token"); !ScopeOf(got).All {
		t.Errorf("alice granted every site reaches %v", got)
	}
}

func TestScopedQueries(t *testing.T) {
	ctx := context.Background()
	f := newSiteFixture(t)
	s := f.s

	// Targets: each side's own agent only.
	targets := func(scope Scope) []string {
		page, err := s.TargetPage(ctx, scope, "", 100, true)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range page {
			out = append(out, a.ID)
		}
		return out
	}
	if got := targets(f.hqScope); !slices.Equal(got, []string{f.hqAgent.ID}) {
		t.Errorf("HQ's targets: %v", got)
	}
	if got := targets(f.mainScope); !slices.Equal(got, []string{f.mainAgent.ID}) {
		t.Errorf("Main's targets: %v", got)
	}
	if got := targets(Scope{}); len(got) != 0 {
		t.Errorf("the zero scope's targets: %v", got)
	}
	if got := targets(f.anyScope); len(got) != 2 {
		t.Errorf("every site's targets: %v", got)
	}

	// FindAgents: by ID, prefix and the shared hostname, never across.
	for _, c := range []struct {
		scope Scope
		ref   string
		want  []string
	}{
		{f.hqScope, "kiosk-01", []string{f.hqAgent.ID}},
		{f.mainScope, "KIOSK-01", []string{f.mainAgent.ID}},
		{f.hqScope, f.mainAgent.ID, nil},
		{f.hqScope, f.mainAgent.ID[:23], nil},
		{f.mainScope, f.hqAgent.ID, nil},
		{f.hqScope, f.hqAgent.ID[:23], []string{f.hqAgent.ID}},
		{f.anyScope, f.mainAgent.ID, []string{f.mainAgent.ID}},
	} {
		found, err := s.FindAgents(ctx, c.scope, c.ref, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range found {
			got = append(got, a.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("FindAgents(%v, %q) = %v, want %v", c.scope.Sites, c.ref, got, c.want)
		}
	}
	if found, _ := s.FindAgents(ctx, f.anyScope, "kiosk-01", 10); len(found) != 2 {
		t.Errorf("every site: kiosk-01 names %d agents, want 2", len(found))
	}

	// Jobs: seen only by who reaches every one of their sites.
	job := func(sites ...string) Job {
		t.Helper()
		j := Job{ID: NewID(), Plugin: "p", PluginVersion: "1.0.0", Target: "all", MaxFailures: -1, MaxFailuresBP: -1,
			Timeout: time.Minute, State: JobRunning, CreatedAt: ts, ExpiresAt: ts.Add(time.Hour), Total: 1, Sites: sites}
		if err := s.CreateJob(ctx, j, []Run{{ID: NewID(), JobID: j.ID, AgentID: NewID(), Hostname: "h", State: RunPending}}); err != nil {
			t.Fatal(err)
		}
		return j
	}
	jHQ, jMain, jBoth, jNone := job(f.hq.ID), job(f.main.ID), job(f.hq.ID, f.main.ID, f.hq.ID), job()
	if got, _ := s.JobSites(ctx, jBoth.ID); len(got) != 2 {
		t.Errorf("a job over HQ, Main and HQ again has sites %v", got)
	}
	for _, c := range []struct {
		name  string
		scope Scope
		want  []string
	}{
		{"HQ", f.hqScope, []string{jHQ.ID}},
		{"Main", f.mainScope, []string{jMain.ID}},
		{"HQ and Main", f.bothScope, []string{jHQ.ID, jMain.ID, jBoth.ID}},
		{"every site", f.anyScope, []string{jHQ.ID, jMain.ID, jBoth.ID, jNone.ID}},
		{"nothing", Scope{}, nil},
	} {
		jobs, err := s.ListJobs(ctx, c.scope, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, j := range jobs {
			got = append(got, j.ID)
		}
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("ListJobs(%s) = %v, want %v", c.name, got, want)
		}
		for _, j := range []Job{jHQ, jMain, jBoth, jNone} {
			for _, ref := range []string{j.ID, j.ID[:30]} {
				found, err := s.FindJobs(ctx, c.scope, ref, 10)
				if err != nil {
					t.Fatal(err)
				}
				if seen := len(found) == 1 && found[0].ID == j.ID; seen != slices.Contains(c.want, j.ID) {
					t.Errorf("FindJobs(%s, %s) = %d jobs, want it seen: %v", c.name, ref, len(found), slices.Contains(c.want, j.ID))
				}
			}
		}
	}

	// Sessions: of the agent's site when requested; they stay there when
	// the agent moves.
	sess := func(agent Agent) string {
		id := NewID()
		if err := s.CreateSession(ctx, Session{ID: id, AgentID: agent.ID, Hostname: agent.Hostname, Technician: "alice", Reason: "r", RequestedAt: ts},
			&audit.Record{Actor: "alice", Action: "session.request", Target: id}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	sHQ, sMain := sess(f.hqAgent), sess(f.mainAgent)
	if err := s.SetAgentSite(ctx, f.mainAgent.ID, f.hq.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		scope Scope
		want  []string
	}{
		{"HQ", f.hqScope, []string{sHQ}},
		{"Main", f.mainScope, []string{sMain}},
		{"every site", f.anyScope, []string{sHQ, sMain}},
		{"nothing", Scope{}, nil},
	} {
		list, err := s.ListSessions(ctx, c.scope, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, x := range list {
			got = append(got, x.ID)
		}
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("ListSessions(%s) = %v, want %v", c.name, got, want)
		}
		for _, id := range []string{sHQ, sMain} {
			found, _ := s.FindSessions(ctx, c.scope, id, 10)
			if (len(found) == 1) != slices.Contains(c.want, id) {
				t.Errorf("FindSessions(%s, %s) = %d sessions", c.name, id, len(found))
			}
		}
	}

	// The audit: a record is about the site its detail names (the
	// session's, added by the store); scoped readers never see relay-wide ones.
	for _, r := range []audit.Record{
		{Actor: "admin", Action: "user.create", Target: "u"},
		{Actor: "admin", Action: "agent.move", Target: f.mainAgent.ID, Detail: map[string]string{"site": f.main.ID}},
		{Actor: "admin", Action: "agent.move", Target: f.mainAgent.ID, Detail: map[string]string{"site": f.hq.ID}},
	} {
		if _, err := s.AppendAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	query := func(q AuditQuery) []audit.Record {
		t.Helper()
		q.Limit = 1000
		recs, err := s.QueryAudit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	for _, c := range []struct {
		name  string
		q     AuditQuery
		sites map[string]int // records by site
	}{
		{"HQ", AuditQuery{Scope: f.hqScope}, map[string]int{f.hq.ID: 2}},
		{"Main", AuditQuery{Scope: f.mainScope}, map[string]int{f.main.ID: 2}},
		{"every site", AuditQuery{Scope: f.anyScope}, map[string]int{f.hq.ID: 2, f.main.ID: 2, "": 1}},
		{"every site, Main only", AuditQuery{Scope: f.anyScope, Site: f.main.ID}, map[string]int{f.main.ID: 2}},
		{"HQ asking for Main", AuditQuery{Scope: f.hqScope, Site: f.main.ID}, map[string]int{}},
		{"nothing", AuditQuery{}, map[string]int{}},
		{"HQ, moves", AuditQuery{Scope: f.hqScope, Action: "agent.move"}, map[string]int{f.hq.ID: 1}},
	} {
		got := map[string]int{}
		for _, r := range query(c.q) {
			got[r.Detail["site"]]++
		}
		if len(got) != len(c.sites) {
			t.Errorf("audit %s: records by site %v, want %v", c.name, got, c.sites)
			continue
		}
		for k, v := range c.sites {
			if got[k] != v {
				t.Errorf("audit %s: records by site %v, want %v", c.name, got, c.sites)
			}
		}
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != 5 {
		t.Errorf("the chain with sites: %d records, %v", n, err)
	}
}
