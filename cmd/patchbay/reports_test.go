package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// reports summary: the default period is the relay's month; CSV is one
// long table (or one section) with formula cells defused; a bad section is
// a usage error.
func TestReportsSummaryCommand(t *testing.T) {
	st := realRelay(t, apiv1.RoleViewer)
	ctx := context.Background()
	for range 2 {
		if _, _, err := st.RaiseAlert(ctx, store.Alert{Kind: "job_halted", Check: "=HYPERLINK(\"x\")", SiteID: store.DefaultSiteID, Severity: "critical"}, "system", fixedNow); err != nil {
			t.Fatal(err)
		}
	}
	r := patchbay(t, "", "reports", "summary", "-o", "json")
	var rep apiv1.ReportSummary
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil || rep.From.Format("2006-01-02") != "2026-11-01" || len(rep.TopProblems) != 1 || rep.TopProblems[0].Raised != 2 {
		t.Fatalf("json: %+v", r)
	}
	r = patchbay(t, "", "reports", "summary", "--from", "2026-11-01", "--to", "2026-12-01", "-o", "csv")
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if r.code != 0 || err != nil || len(rows) < 10 || strings.Join(rows[0], ",") != "section,item,value" {
		t.Fatalf("csv: %v %+v", err, r)
	}
	found := false
	for _, row := range rows {
		if len(row) != 3 {
			t.Fatalf("csv row %q: want 3 cells", row)
		}
		if row[0] == "incidents" && row[1] == "opened" && row[2] != "0" || row[0] == "alerts" && row[1] == "job_halted" && row[2] != "1" {
			t.Errorf("csv row %q", row)
		}
		if row[0] == "problems" && row[1] == `job_halted/=HYPERLINK("x").raised` && row[2] == "2" {
			found = true
		}
	}
	if !found {
		t.Errorf("csv has no problem row:\n%s", r.stdout)
	}
	r = patchbay(t, "", "reports", "summary", "-o", "csv", "--section", "problems")
	if r.code != 0 || r.stdout != "kind,check,alerts,raised\njob_halted,\"'=HYPERLINK(\"\"x\"\")\",1,2\n" {
		t.Errorf("csv section: %+v", r)
	}
	r = patchbay(t, "", "reports", "summary")
	if r.code != 0 || !strings.Contains(r.stdout, "Top recurring problems") || !strings.Contains(r.stdout, "Patch compliance (now, per site)") {
		t.Errorf("table: %+v", r)
	}
	if r := patchbay(t, "", "reports", "summary", "-o", "csv", "--section", "nope"); r.code != 2 || !strings.Contains(r.stderr, "--section") {
		t.Errorf("bad section: %+v", r)
	}
}
