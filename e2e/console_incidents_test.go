package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/patchbay/patchbay/internal/apiv1"
)

// The console's Incidents screen lists the incidents of the caller's
// sites, filtered by state; the text of an incident is shown as text.
func TestConsoleIncidents(t *testing.T) {
	browser := startBrowser(t)
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	a := r.Enroll(admin.Token()).Start()
	waitFor(t, 20*time.Second, "agent online", func() bool { return admin.Online(a.ID) })
	var open, closed apiv1.Incident
	decodeInto(t, admin.Run("incidents", "create", "--title", "<b>printer</b> offline", "--agent", a.ID, "--ticket", "INC-77", "--severity", "critical", "-o", "json"), &open)
	decodeInto(t, admin.Run("incidents", "create", "--title", "slow logins", "--site", "default/default", "-o", "json"), &closed)
	openID, closedID := open.ID, closed.ID
	admin.Run("incidents", "resolve", closedID, "--resolution", "cleared the profile cache")

	p := newPage(t, browser)
	link := strings.TrimSpace(admin.Run("console", "--no-open"))
	p.run(t, chromedp.Navigate(link))
	p.waitJS(t, "the Fleet screen", `document.querySelectorAll('#agents tr[data-id]').length === 1`)
	p.goTo(t, "#/incidents", `document.querySelector('#incidents')?.dataset.loaded === 'true'`)
	p.waitJS(t, "two incident rows", `document.querySelectorAll('#incidents tr[data-id]').length === 2`)
	row := p.str(t, fmt.Sprintf(`document.querySelector('#incidents tr[data-id="%s"]').innerText`, openID))
	for _, want := range []string{"critical", "open", "INC-77", "default/default", "<b>printer</b> offline"} {
		if !strings.Contains(row, want) {
			t.Errorf("row of the open incident = %q: lacks %q", row, want)
		}
	}
	if p.bool(t, `document.querySelector('#incidents b') !== null`) {
		t.Error("an incident's title became markup")
	}
	if got := p.str(t, fmt.Sprintf(`document.querySelector('#incidents tr[data-id="%s"]').innerText`, closedID)); !strings.Contains(got, "cleared the profile cache") {
		t.Errorf("row of the resolved incident = %q: lacks its resolution", got)
	}
	p.bool(t, `(() => { const s = document.querySelector('#incident-state'); s.value = 'open'; s.dispatchEvent(new Event('change')); return true })()`)
	p.waitJS(t, "only the open incident", `document.querySelectorAll('#incidents tr[data-id]').length === 1 &&
		document.querySelector('#incidents tr[data-id]').dataset.state === 'open'`)
	p.screenshot(t, "incidents")
}
