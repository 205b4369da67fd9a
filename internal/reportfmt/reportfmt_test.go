package reportfmt

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

func sample() apiv1.ReportSummary {
	return apiv1.ReportSummary{Site: "acme/<b>paris</b>", From: time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC),
		Incidents:    apiv1.ReportIncidents{Opened: 4, Resolved: 3, MedianResolveSeconds: 5400},
		Fixes:        apiv1.ReportRuns{Ended: 10, Succeeded: 9, Failed: 1, SuccessRate: 0.9},
		AlertsByKind: []apiv1.ReportCount{{Key: "check", Count: 5}, {Key: "=agent_offline", Count: 2}},
		TopProblems:  []apiv1.ReportProblem{{Kind: "check", Check: "=cmd|' /C calc'!A0", Alerts: 5, Raised: 12}},
		AgentsByOS:   []apiv1.ReportCount{{Key: "linux", Count: 7}}}
}

func TestTextAndSubject(t *testing.T) {
	rep := sample()
	if s := Subject("weekly", rep); s != "[patchbay] report weekly: acme/<b>paris</b>, 2026-11-30 to 2026-12-07" {
		t.Fatalf("subject %q", s)
	}
	txt := Text(rep)
	for _, want := range []string{"Incidents: 4 opened, 3 resolved (median 1h30m0s to resolve)", "Fixes: 10 ended, 9 succeeded (90%)",
		"Alerts: 7 opened", "Agents: 7", "Top recurring problems\n  kind=check, check==cmd|' /C calc'!A0, alerts=5, raised=12"} {
		if !strings.Contains(txt, want) {
			t.Errorf("text lacks %q:\n%s", want, txt)
		}
	}
}

func TestHTMLEscapesAndCSVDefuses(t *testing.T) {
	var h bytes.Buffer
	if err := WriteHTML(&h, sample()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.String(), "<b>paris") || !strings.Contains(h.String(), "&lt;b&gt;paris") || !strings.Contains(h.String(), "<h2>Top recurring problems</h2>") {
		t.Fatalf("html:\n%s", h.String())
	}
	var c bytes.Buffer
	if err := WriteCSV(&c, sample(), ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.String(), "incidents,opened,4\n") || !strings.Contains(c.String(), "alerts,'=agent_offline,2\n") {
		t.Fatalf("csv:\n%s", c.String())
	}
}
