package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/alerts"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// Alerts through the API: a technician sees and changes only the alerts of
// their sites; routes are the admins', and their secrets are never shown.
func TestAlertsScopeAndRoles(t *testing.T) {
	ctx := context.Background()
	a, h, tokens := testAPI(t)
	svc := alerts.New(alerts.Config{Store: a.Store, Log: zerolog.Nop()})
	a.Alerts = svc
	org := store.Organisation{ID: store.NewID(), Name: "Acme", CreatedAt: time.Now()}
	other := store.Site{ID: store.NewID(), OrgID: org.ID, Name: "Lyon", CreatedAt: time.Now()}
	if err := a.Store.CreateOrganisation(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.CreateSite(ctx, other); err != nil {
		t.Fatal(err)
	}
	mine, _, err := a.Store.RaiseAlert(ctx, store.Alert{Kind: alerts.KindJobHalted, Check: "job-a", SiteID: store.DefaultSiteID, Severity: "critical", Summary: "mine"}, "system", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	theirs, _, err := a.Store.RaiseAlert(ctx, store.Alert{Kind: alerts.KindJobHalted, Check: "job-b", SiteID: other.ID, Severity: "critical", Summary: "theirs"}, "system", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tech, _, err := mintUserToken(ctx, a.Store, "test", "", []string{store.DefaultSiteID}, apiv1.RoleTechnician, "scoped-tech", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var list apiv1.AlertList
	rec := do(h, "GET", "/v1/alerts", tech, "")
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Alerts) != 1 || list.Alerts[0].ID != mine.ID {
		t.Fatalf("scoped list: %d %s", rec.Code, rec.Body)
	}
	rec = do(h, "GET", "/v1/alerts?state=open", tokens[apiv1.RoleAdmin], "")
	if json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Alerts) != 2 {
		t.Fatalf("admin list: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "GET", "/v1/alerts?state=bogus", tech, ""); rec.Code != 400 {
		t.Fatalf("bad state: %d", rec.Code)
	}
	if rec := do(h, "POST", "/v1/alerts/"+theirs.ID[:20]+"/ack", tech, `{}`); rec.Code != 404 {
		t.Fatalf("ack out of scope: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/alerts/"+mine.ID+"/ack", tokens[apiv1.RoleViewer], `{}`); rec.Code != 403 {
		t.Fatalf("viewer ack: %d", rec.Code)
	}
	var got apiv1.Alert
	rec = do(h, "POST", "/v1/alerts/"+mine.ID[:20]+"/ack", tech, `{"note":"on it"}`)
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.State != "acknowledged" || got.Note != "on it" || !strings.Contains(got.AckedBy, "scoped-tech") {
		t.Fatalf("ack: %d %s", rec.Code, rec.Body)
	}
	rec = do(h, "POST", "/v1/alerts/"+mine.ID+"/resolve", tech, `{}`)
	if rec.Code != 200 {
		t.Fatalf("resolve: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/alerts/"+mine.ID+"/resolve", tech, `{}`); rec.Code != 409 {
		t.Fatalf("resolve twice: %d %s", rec.Code, rec.Body)
	}
	// Routes.
	route := `{"site":"all","min_severity":"warning","kind":"webhook","target":"https://hooks.example.com/x","secret":"hush"}`
	if rec := do(h, "POST", "/v1/alert-routes", tech, route); rec.Code != 403 {
		t.Fatalf("technician creates a route: %d", rec.Code)
	}
	if rec := do(h, "POST", "/v1/alert-routes", tokens[apiv1.RoleAdmin], strings.Replace(route, `,"secret":"hush"`, "", 1)); rec.Code != 400 || !strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("route without a secret: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/alert-routes", tokens[apiv1.RoleAdmin], `{"site":"Acme/Lyon","min_severity":"warning","kind":"smtp","target":"smtp://mail:587","to":["a@b"]}`); rec.Code != 400 {
		t.Fatalf("smtp route without --from: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/alert-routes", tokens[apiv1.RoleAdmin], route); rec.Code != 201 {
		t.Fatalf("create route: %d %s", rec.Code, rec.Body)
	}
	rec = do(h, "GET", "/v1/alert-routes", tokens[apiv1.RoleAdmin], "")
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "hush") || !strings.Contains(rec.Body.String(), "hooks.example.com") {
		t.Fatalf("list routes: %d %s", rec.Code, rec.Body)
	}
}
