package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/patchbay/patchbay/internal/apiv1"
)

// The console's Reports screen shows the month's figures with bar charts
// drawn as inline SVG: one bar per group, sized by its count.
func TestConsoleReports(t *testing.T) {
	browser := startBrowser(t)
	f := newPluginFleet(t)
	f.fleetOf(t, 1) // two agents
	admin := f.cli
	admin.publish(t, f.good, bin("plugins/testplugin"))
	// A fix that succeeds on both agents; one halted by its canary failing
	// (one failed run, one halted, a job_halted alert): 4 ended, 2 succeeded.
	if j, err := admin.runJob(t, "testplugin", "--target", "fleet=plugins", "--param", "mode=echo", "--param", "text=hi"); err != nil || j.Counts["succeeded"] != 2 {
		t.Fatalf("good job: %v %v", err, j.Counts)
	}
	if j, err := admin.runJob(t, "testplugin", "--target", "fleet=plugins", "--canary", "1", "--max-failures", "0", "--param", "mode=fail"); err == nil || j.State != "halted" {
		t.Fatalf("failing job: %v %s", err, j.State)
	}
	waitFor(t, 30*time.Second, "a job_halted alert", func() bool {
		return strings.Contains(admin.Run("alerts", "list", "--kind", "job_halted"), "job_halted")
	})
	var one, two apiv1.Incident
	decodeInto(t, admin.Run("incidents", "create", "--title", "<b>printer</b> offline", "--agent", f.agent.ID, "-o", "json"), &one)
	decodeInto(t, admin.Run("incidents", "create", "--title", "slow logins", "--site", "default/default", "-o", "json"), &two)
	admin.Run("incidents", "resolve", two.ID, "--resolution", "cleared the cache")

	p := newPage(t, browser)
	link := strings.TrimSpace(admin.Run("console", "--no-open"))
	p.run(t, chromedp.Navigate(link))
	p.waitJS(t, "the Fleet screen", `document.querySelectorAll('#agents tr[data-id]').length === 2`)
	p.goTo(t, "#/reports", `document.querySelector('#reports')?.dataset.loaded === 'true'`)
	for sel, want := range map[string]string{"#tile-opened .tile-value": "2", "#tile-resolved .tile-value": "1", "#tile-fix-rate .tile-value": "50 %"} {
		if got := p.str(t, fmt.Sprintf(`document.querySelector(%q).textContent`, sel)); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	// Each chart: its bars (SVG rects) by key and value.
	bars := func(chart string) string {
		return p.str(t, fmt.Sprintf(`[...document.querySelectorAll('#%s svg rect.bar')].map((r) => r.dataset.key + '=' + r.dataset.value).join(',')`, chart))
	}
	for chart, want := range map[string]string{
		"chart-runs":     "fixes=4,self-heals=0",
		"chart-alerts":   "job_halted=1",
		"chart-os":       "linux=2",
		"chart-problems": "", // checked below: one bar, the halted job
	} {
		if got := bars(chart); want != "" && got != want {
			t.Errorf("%s bars: %q, want %q", chart, got, want)
		}
	}
	if n := p.str(t, `String(document.querySelectorAll('#chart-problems svg rect.bar').length)`); n != "1" {
		t.Errorf("top problems: %s bars, want 1", n)
	}
	if n := p.str(t, `String(document.querySelectorAll('#chart-versions svg rect.bar').length)`); n != "1" {
		t.Errorf("agents by version: %s bars, want 1", n)
	}
	if got := p.str(t, `document.querySelector('#report-patch').textContent`); !strings.Contains(got, "agents have no pending update") {
		t.Errorf("patch compliance: %q", got)
	}
	if n := p.str(t, `String(document.querySelectorAll('#chart-patch svg rect.bar').length)`); n == "0" || n == "" {
		t.Errorf("patch compliance chart: %s bars", n)
	}
	p.screenshot(t, "reports")
}
