package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// Incidents through the API: a scoped technician sees and changes only
// the incidents of their sites (404 otherwise); what is invalid is
// refused with a clear error and nothing is stored.
func TestIncidentsScopeAndValidation(t *testing.T) {
	ctx := context.Background()
	a, h, tokens := testAPI(t)
	admin := tokens[apiv1.RoleAdmin]
	org := store.Organisation{ID: store.NewID(), Name: "Acme", CreatedAt: time.Now()}
	other := store.Site{ID: store.NewID(), OrgID: org.ID, Name: "Lyon", CreatedAt: time.Now()}
	if err := a.Store.CreateOrganisation(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.CreateSite(ctx, other); err != nil {
		t.Fatal(err)
	}
	alert, _, err := a.Store.RaiseAlert(ctx, store.Alert{Kind: "job_halted", Check: "job-a", SiteID: store.DefaultSiteID, Severity: "critical",
		Summary: "print queue stuck on kiosk"}, "system", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	theirAlert, _, err := a.Store.RaiseAlert(ctx, store.Alert{Kind: "job_halted", Check: "job-b", SiteID: other.ID, Severity: "critical", Summary: "theirs"}, "system", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tech, _, err := mintUserToken(ctx, a.Store, "test", "", []string{store.DefaultSiteID}, apiv1.RoleTechnician, "scoped-tech", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	head0, _, _ := a.Store.AuditHead(ctx)
	// A known fix whose pattern matches the alert's summary.
	for _, bad := range []struct{ body, want string }{
		{`{"name":"x","plugin":"script","pattern":"(unclosed","pattern_kind":"regexp"}`, "not a Go regexp"},
		{`{"name":"x","plugin":"script","pattern":"a{1000}b{1000}c{1000}d{1000}e{1000}f{1000}","pattern_kind":"regexp"}`, "too complex"},
		{`{"name":"x","plugin":"script","pattern":"((a{100}){100}){100}","pattern_kind":"regexp"}`, "at most 1000"},
		{`{"name":"x","plugin":"script"}`, "a symptom is required"},
		{`{"name":"Bad Name","plugin":"script","check":"c"}`, "lower-case"},
		{`{"name":"x","check":"c"}`, "plugin or script is required"},
	} {
		rec := do(h, "POST", "/v1/known-fixes", tech, bad.body)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), bad.want) {
			t.Errorf("known fix %s: %d %s, want 400 %q", bad.body, rec.Code, rec.Body, bad.want)
		}
	}
	if rec := do(h, "POST", "/v1/known-fixes", tokens[apiv1.RoleViewer], `{"name":"v","plugin":"script","check":"c"}`); rec.Code != 403 {
		t.Fatalf("viewer creates a known fix: %d", rec.Code)
	}
	if rec := do(h, "POST", "/v1/known-fixes", tech, `{"name":"spooler","plugin":"script","params":{"name":"restart spooler"},"pattern":"print queue.*stuck","pattern_kind":"regexp"}`); rec.Code != 201 {
		t.Fatalf("create known fix: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/known-fixes", tech, `{"name":"spooler","plugin":"script","check":"c"}`); rec.Code != 409 {
		t.Fatalf("same name: %d %s", rec.Code, rec.Body)
	}
	var fixes apiv1.KnownFixList
	if rec := do(h, "GET", "/v1/known-fixes", tech, ""); json.Unmarshal(rec.Body.Bytes(), &fixes) != nil || len(fixes.KnownFixes) != 1 {
		t.Fatalf("known fixes stored: %s", rec.Body)
	}
	if rec := do(h, "GET", "/v1/known-fixes?q=QUEUE", tech, ""); json.Unmarshal(rec.Body.Bytes(), &fixes) != nil || len(fixes.KnownFixes) != 1 {
		t.Fatalf("search: %s", rec.Body)
	}
	// The alert offers it.
	var al apiv1.Alert
	if rec := do(h, "GET", "/v1/alerts/"+alert.ID, tech, ""); json.Unmarshal(rec.Body.Bytes(), &al) != nil || len(al.KnownFixes) != 1 ||
		al.KnownFixes[0].Command != "patchbay run script --target 'id=AGENT' --param 'name=restart spooler'" {
		t.Fatalf("alert's known fixes: %s", rec.Body)
	}

	// Incidents: validation, nothing stored.
	bigNote := strings.Repeat("x", maxIncidentNote+1)
	for _, bad := range []struct {
		body, want string
		code       int
	}{
		{`{"title":"t"}`, "a site is required", 400},
		{`{"site":"default/default"}`, "a title is required", 400},
		{`{"title":"t","site":"default/default","severity":"huge"}`, "severity", 400},
		{`{"title":"t","site":"Acme/Lyon"}`, "no such site", 400},
		{`{"from_alert":"` + theirAlert.ID + `"}`, "names 0 alerts", 400},
		{`{"title":"` + strings.Repeat("t", 201) + `","site":"default/default"}`, "at most 200", 400},
		{`{"title":"t\u001b[2J","site":"default/default"}`, "control character", 400},
		{fmt.Sprintf(`{"title":"t","site":"default/default","note":%q}`, bigNote), "at most 32768", 400},
		{`{"from_alert":"x","from_session":"y"}`, "not both", 400},
	} {
		rec := do(h, "POST", "/v1/incidents", tech, bad.body)
		if rec.Code != bad.code || !strings.Contains(rec.Body.String(), bad.want) {
			t.Errorf("create %.80s: %d %s, want %d %q", bad.body, rec.Code, rec.Body, bad.code, bad.want)
		}
	}
	if l, err := a.Store.ListIncidents(ctx, store.Scope{All: true}, store.IncidentFilter{}, 0); err != nil || len(l) != 0 {
		t.Fatalf("refused incidents stored: %+v %v", l, err)
	}
	var mine, theirs apiv1.Incident
	rec := do(h, "POST", "/v1/incidents", tech, `{"from_alert":"`+alert.ID[:20]+`","ticket":"INC-1234"}`)
	if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &mine) != nil || mine.Title != alert.Summary || mine.Severity != "critical" ||
		mine.Site != "default/default" || len(mine.Links) != 1 || mine.Links[0].ID != alert.ID || len(mine.KnownFixes) != 1 || mine.KnownFixes[0].Name != "spooler" {
		t.Fatalf("create from alert: %d %s", rec.Code, rec.Body)
	}
	rec = do(h, "POST", "/v1/incidents", admin, `{"title":"their outage","site":"Acme/Lyon"}`)
	if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &theirs) != nil {
		t.Fatalf("admin create: %d %s", rec.Code, rec.Body)
	}
	var list apiv1.IncidentList
	if rec := do(h, "GET", "/v1/incidents", tech, ""); json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Incidents) != 1 || list.Incidents[0].ID != mine.ID {
		t.Fatalf("scoped list: %s", rec.Body)
	}
	if rec := do(h, "GET", "/v1/incidents?state=open", admin, ""); json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Incidents) != 2 {
		t.Fatalf("admin list: %s", rec.Body)
	}
	// Out of scope: 404 for every route.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/incidents/" + theirs.ID, ""},
		{"POST", "/v1/incidents/" + theirs.ID[:20] + "/notes", `{"body":"x"}`},
		{"POST", "/v1/incidents/" + theirs.ID + "/links", `{"alert":"` + alert.ID + `"}`},
		{"POST", "/v1/incidents/" + theirs.ID + "/resolve", `{"resolution":"x"}`},
	} {
		if rec := do(h, c.method, c.path, tech, c.body); rec.Code != 404 {
			t.Errorf("%s %s out of scope: %d %s", c.method, c.path, rec.Code, rec.Body)
		}
	}
	// Linking something out of scope is refused too.
	if rec := do(h, "POST", "/v1/incidents/"+mine.ID+"/links", tech, `{"alert":"`+theirAlert.ID+`"}`); rec.Code != 400 {
		t.Fatalf("link their alert: %d %s", rec.Code, rec.Body)
	}
	// Notes: oversized and empty refused, nothing stored.
	if rec := do(h, "POST", "/v1/incidents/"+mine.ID+"/notes", tech, fmt.Sprintf(`{"body":%q}`, bigNote)); rec.Code != 400 || !strings.Contains(rec.Body.String(), "at most 32768") {
		t.Fatalf("big note: %d %.200s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/incidents/"+mine.ID+"/notes", tech, `{"body":"  "}`); rec.Code != 400 {
		t.Fatalf("empty note: %d", rec.Code)
	}
	if rec := do(h, "POST", "/v1/incidents/"+mine.ID+"/notes", tokens[apiv1.RoleViewer], `{"body":"x"}`); rec.Code != 403 {
		t.Fatalf("viewer note: %d", rec.Code)
	}
	var got apiv1.Incident
	if rec := do(h, "POST", "/v1/incidents/"+mine.ID[:20]+"/notes", tech, `{"body":"## Found\nspooler hung"}`); rec.Code != 200 ||
		json.Unmarshal(rec.Body.Bytes(), &got) != nil || len(got.Notes) != 1 || got.Notes[0].Body != "## Found\nspooler hung" {
		t.Fatalf("note: %d %s", rec.Code, rec.Body)
	}
	// Resolving: a resolution is required; the known fix must exist.
	if rec := do(h, "POST", "/v1/incidents/"+mine.ID+"/resolve", tech, `{"resolution":" "}`); rec.Code != 400 || !strings.Contains(rec.Body.String(), "what fixed it") {
		t.Fatalf("resolve without resolution: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/incidents/"+mine.ID+"/resolve", tech, `{"resolution":"x","known_fix":"nope"}`); rec.Code != 400 || !strings.Contains(rec.Body.String(), "no known fix") {
		t.Fatalf("resolve with unknown fix: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/incidents/"+mine.ID+"/resolve", tech, `{"resolution":"restarted the spooler","known_fix":"spooler"}`); rec.Code != 200 ||
		json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.State != "resolved" || got.KnownFix != "spooler" || !strings.Contains(got.ResolvedBy, "scoped-tech") {
		t.Fatalf("resolve: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/incidents/"+mine.ID+"/resolve", tech, `{"resolution":"again"}`); rec.Code != 409 {
		t.Fatalf("resolve twice: %d %s", rec.Code, rec.Body)
	}
	recs, err := a.Store.ListAudit(ctx, head0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	if got := strings.Join(actions, " "); got != "known-fix.create incident.create incident.create incident.note incident.resolve" {
		t.Fatalf("audit: %s", got)
	}
}

// An incident from a session: the session's reason is its title, its agent
// and site the incident's, and the session is linked; agents of another
// site are refused.
func TestIncidentFromSession(t *testing.T) {
	ctx := context.Background()
	a, h, tokens := testAPI(t)
	tech := tokens[apiv1.RoleTechnician]
	now := time.Now().UTC()
	if err := a.Store.CreateEnrollToken(ctx, store.EnrollToken{ID: store.NewID(), Hash: "h", CreatedAt: now, ExpiresAt: now.Add(time.Hour), CreatedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	ag, _, err := a.Store.EnrollAgent(ctx, "h", store.Agent{ID: store.NewID(), Hostname: "pc-042"}, now)
	if err != nil {
		t.Fatal(err)
	}
	sid := store.NewID()
	if err := a.Store.CreateSession(ctx, store.Session{ID: sid, AgentID: ag.ID, Hostname: "pc-042", Technician: "t", Actor: "a",
		Reason: "INC-4711 printer offline", RequestedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	var got apiv1.Incident
	rec := do(h, "POST", "/v1/incidents", tech, `{"from_session":"`+sid[:20]+`"}`)
	if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.Title != "INC-4711 printer offline" || len(got.Agents) != 1 ||
		got.Agents[0] != ag.ID || got.Hostnames[0] != "pc-042" || len(got.Links) != 1 || got.Links[0].Kind != "session" || got.Links[0].ID != sid {
		t.Fatalf("from session: %d %s", rec.Code, rec.Body)
	}
	// By hand: the agent's site is the incident's.
	rec = do(h, "POST", "/v1/incidents", tech, `{"title":"slow","agents":["pc-042"],"severity":"info"}`)
	if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.Site != "default/default" || got.Severity != "info" {
		t.Fatalf("by hand: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/incidents", tech, `{"title":"x","agents":["nope"]}`); rec.Code != 400 || !strings.Contains(rec.Body.String(), "names 0 agents") {
		t.Fatalf("unknown agent: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/incidents/"+got.ID+"/links", tech, `{"session":"`+sid+`"}`); rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil || len(got.Links) != 1 {
		t.Fatalf("link session: %d %s", rec.Code, rec.Body)
	}
}
