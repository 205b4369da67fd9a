package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// Reports through the API: a technician scoped to one site sees only that
// site's figures, and cannot name another site; an admin sees all; a bad
// period is refused.
func TestReportSummaryScope(t *testing.T) {
	ctx := context.Background()
	a, h, tokens := testAPI(t)
	admin := tokens[apiv1.RoleAdmin]
	now := time.Now().UTC()
	org := store.Organisation{ID: store.NewID(), Name: "Acme", CreatedAt: now}
	other := store.Site{ID: store.NewID(), OrgID: org.ID, Name: "Lyon", CreatedAt: now}
	if err := a.Store.CreateOrganisation(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.CreateSite(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, x := range []store.Alert{
		{Kind: "job_halted", Check: "job-a", SiteID: store.DefaultSiteID, Severity: "critical"},
		{Kind: "job_halted", Check: "job-b", SiteID: other.ID, Severity: "critical"},
		{Kind: "offline", Check: "x", SiteID: other.ID, Severity: "warning"},
	} {
		if _, _, err := a.Store.RaiseAlert(ctx, x, "system", now); err != nil {
			t.Fatal(err)
		}
	}
	for _, site := range []string{store.DefaultSiteID, other.ID, other.ID} {
		if _, err := a.Store.CreateIncident(ctx, store.Incident{Title: "t", SiteID: site, Severity: "warning"}, nil, "", "alice", now); err != nil {
			t.Fatal(err)
		}
	}
	tech, _, err := mintUserToken(ctx, a.Store, "test", "", []string{store.DefaultSiteID}, apiv1.RoleTechnician, "scoped-tech", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	get := func(tok, query string) (apiv1.ReportSummary, int, string) {
		t.Helper()
		rec := do(h, "GET", "/v1/reports/summary"+query, tok, "")
		var rep apiv1.ReportSummary
		if rec.Code == 200 {
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
				t.Fatalf("report %s: %v", rec.Body, err)
			}
		}
		return rep, rec.Code, rec.Body.String()
	}
	period := "?from=" + now.AddDate(0, 0, -1).Format(time.DateOnly) + "&to=" + now.AddDate(0, 0, 2).Format(time.DateOnly)
	rep, code, body := get(tech, period)
	if code != 200 || rep.Incidents.Opened != 1 || len(rep.AlertsByKind) != 1 || rep.AlertsByKind[0].Count != 1 || len(rep.TopProblems) != 1 ||
		rep.TopProblems[0].Check != "job-a" || !rep.PatchCompliance.Collected || rep.PatchCompliance.Reason != "" {
		t.Fatalf("scoped report: %d %s", code, body)
	}
	if _, code, body := get(tech, period+"&site=Acme/Lyon"); code != 400 || !strings.Contains(body, "site") {
		t.Fatalf("scoped report of another site: %d %s", code, body)
	}
	rep, code, body = get(admin, period)
	if code != 200 || rep.Incidents.Opened != 3 || len(rep.AlertsByKind) != 2 || len(rep.TopProblems) != 3 {
		t.Fatalf("admin report: %d %s", code, body)
	}
	rep, code, body = get(admin, period+"&site=Acme/Lyon")
	if code != 200 || rep.Site != "Acme/Lyon" || rep.Incidents.Opened != 2 || len(rep.AgentsByOS) != 0 {
		t.Fatalf("admin report of Lyon: %d %s", code, body)
	}
	// Default period: this month.
	if rep, code, body := get(tech, ""); code != 200 || rep.From.Day() != 1 || rep.To.Sub(rep.From) < 28*24*time.Hour {
		t.Fatalf("default period: %d %s", code, body)
	}
	for _, q := range []string{"?from=yesterday", "?from=2026-12-01&to=2026-11-01"} {
		if _, code, body := get(tech, q); code != 400 || !strings.Contains(body, "report:") {
			t.Errorf("bad period %s: %d %s", q, code, body)
		}
	}
}
