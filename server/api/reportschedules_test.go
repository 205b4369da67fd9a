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

func TestPeriodStart(t *testing.T) {
	end := time.Date(2026, 3, 31, 7, 0, 0, 0, time.UTC)
	for p, want := range map[string]time.Time{
		"7d": end.AddDate(0, 0, -7), "1w": end.AddDate(0, 0, -7), "1mo": time.Date(2026, 3, 3, 7, 0, 0, 0, time.UTC),
		"24h": end.Add(-24 * time.Hour), "12mo": end.AddDate(-1, 0, 0),
	} {
		if got, err := periodStart(end, p); err != nil || !got.Equal(want) {
			t.Errorf("periodStart(%s) = %s, %v; want %s", p, got, err, want)
		}
	}
	for _, p := range []string{"", "0d", "-1d", "30m", "2y", "400d", "13mo", "d", "1.5d"} {
		if _, err := periodStart(end, p); err == nil {
			t.Errorf("periodStart(%q) accepted", p)
		}
	}
}

// Report schedules: admins create and delete them, technicians may not,
// viewers list them; the SMTP route is chosen only when exactly one fits.
func TestReportScheduleRolesAndRoute(t *testing.T) {
	ctx := context.Background()
	a, h, tokens := testAPI(t)
	body := `{"name":"weekly","cron":"0 7 * * 1","tz":"Europe/Berlin","period":"7d","to":["ops@example.com"]}`
	if rec := do(h, "POST", "/v1/reports/schedules", tokens[apiv1.RoleAdmin], body); rec.Code != 400 || !strings.Contains(rec.Body.String(), "no SMTP alert route") {
		t.Fatalf("no route: %d %s", rec.Code, rec.Body)
	}
	hook, err := a.Store.CreateAlertRoute(ctx, store.AlertRoute{SiteID: store.AllSites, MinSeverity: "info", Kind: store.RouteWebhook, Target: "https://hooks.example/x"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := a.Store.CreateAlertRoute(ctx, store.AlertRoute{SiteID: store.AllSites, MinSeverity: "info", Kind: store.RouteSMTP,
			Target: "smtp://mail.example:587", From: "pb@example.com", To: []string{"x@example.com"}}, time.Now().Add(time.Duration(i))); err != nil {
			t.Fatal(err)
		}
	}
	if rec := do(h, "POST", "/v1/reports/schedules", tokens[apiv1.RoleAdmin], body); rec.Code != 400 || !strings.Contains(rec.Body.String(), "pass --route") {
		t.Fatalf("two routes: %d %s", rec.Code, rec.Body)
	}
	withRoute := func(r string) string { return strings.TrimSuffix(body, "}") + `,"route":"` + r + `"}` }
	if rec := do(h, "POST", "/v1/reports/schedules", tokens[apiv1.RoleAdmin], withRoute(hook.ID)); rec.Code != 400 || !strings.Contains(rec.Body.String(), "no such SMTP alert route") {
		t.Fatalf("webhook route: %d %s", rec.Code, rec.Body)
	}
	routes, _ := a.Store.ListAlertRoutes(ctx)
	var smtpID string
	for _, r := range routes {
		if r.Kind == store.RouteSMTP {
			smtpID = r.ID
		}
	}
	if rec := do(h, "POST", "/v1/reports/schedules", tokens[apiv1.RoleTechnician], withRoute(smtpID)); rec.Code != 403 {
		t.Fatalf("technician create: %d %s", rec.Code, rec.Body)
	}
	rec := do(h, "POST", "/v1/reports/schedules", tokens[apiv1.RoleAdmin], withRoute(smtpID[:len(smtpID)-4]))
	var sc apiv1.ReportSchedule
	if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &sc) != nil || sc.Route != smtpID || sc.Format != "csv" || sc.NextFire == nil || sc.NextFire.Weekday() != time.Monday {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var list []apiv1.ReportSchedule
	if rec := do(h, "GET", "/v1/reports/schedules", tokens[apiv1.RoleViewer], ""); rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list) != 1 {
		t.Fatalf("viewer list: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "DELETE", "/v1/reports/schedules/weekly", tokens[apiv1.RoleViewer], ""); rec.Code != 403 {
		t.Fatalf("viewer delete: %d", rec.Code)
	}
	if rec := do(h, "DELETE", "/v1/reports/schedules/weekly", tokens[apiv1.RoleAdmin], ""); rec.Code != 204 {
		t.Fatalf("admin delete: %d %s", rec.Code, rec.Body)
	}
}
