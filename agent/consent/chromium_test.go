package consent

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The consent page in a real browser: a request rendered by the server is
// approved, one that arrives while the page is open (rendered by its script)
// is denied, and a live session is ended; hostile text stays text.
func TestChromiumConsentPage(t *testing.T) {
	page := startChromium(t)
	sessions := &fakeSessions{live: []Live{{ID: "live-1", Technician: "carol", Reason: "VPN broken",
		Capabilities: []string{"shell", "forward"}, Started: time.Now().Add(-5 * time.Minute)}}}
	c := start(t, Policy{Mode: ModePrompt, Backend: "web", Timeout: 60 * time.Second}, sessions,
		options{openBrowser: func(string) {}})
	evil := `INC-4711 <img src=x onerror="window.pwned=1"><script>window.pwned=2</script>`
	wantBy := webUser
	if runtime.GOOS == "linux" {
		wantBy = currentUser() // Chromium runs as the test's user
	}

	// A request pending before the page is opened.
	first := decideAsync(context.Background(), c, testRequest("req-1", "bob@helpdesk", evil, time.Time{}))
	waitPending(t, c, 1)
	page.navigate(t, c.URL())
	approve := `document.querySelector('button[data-action="approve"][data-session="req-1"]')`
	page.waitTrue(t, "the Approve button", approve+` !== null`)
	page.waitTrue(t, "the live session", `document.querySelector('button[data-action="end"][data-session="live-1"]') !== null`)
	page.waitTrue(t, "the countdown", `/Denied automatically in \d+ s\./.test(document.querySelector('li[data-session="req-1"] .countdown').textContent)`)
	checkText(t, page, "req-1", evil)
	if got := page.eval(t, `document.body.innerText`).(string); !strings.Contains(got, "copy files to and from this machine") ||
		!strings.Contains(got, "connect to services on this machine's loopback") {
		t.Errorf("the page does not say what is asked in plain words:\n%s", got)
	}

	shot := page.screenshot(t)
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil || img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
		t.Fatalf("screenshot is not a usable PNG (%d bytes): %v", len(shot), err)
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "consent-web.png"), "/tmp/consent-web.png"} {
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Errorf("save screenshot: %v", err)
		}
	}

	page.eval(t, approve+`.click()`)
	d := await(t, first, 10*time.Second)
	if !d.Approved || d.By != wantBy || d.Backend != "web" {
		t.Errorf("first decision = %+v, want approved by %q", d, wantBy)
	}
	page.waitTrue(t, "the answered request to go", `document.querySelector('li[data-session="req-1"]') === null`)

	// A request that arrives while the page is open: the script renders it.
	second := decideAsync(context.Background(), c, testRequest("req-2", "mallory", evil, time.Time{}))
	deny := `document.querySelector('button[data-action="deny"][data-session="req-2"]')`
	page.waitTrue(t, "the second request", deny+` !== null`)
	checkText(t, page, "req-2", evil)
	if title := page.eval(t, `document.title`).(string); !strings.HasPrefix(title, "(1) ") {
		t.Errorf("title = %q, want the pending count", title)
	}
	page.eval(t, deny+`.click()`)
	if d := await(t, second, 10*time.Second); d.Approved || d.Message != "denied by the user" {
		t.Errorf("second decision = %+v", d)
	}

	// End the live session.
	page.eval(t, `document.querySelector('button[data-action="end"][data-session="live-1"]').click()`)
	waitFor(t, "Sessions.End", 10*time.Second, func() bool { return len(sessions.endedList()) == 1 })
	if got := sessions.endedList()[0]; got != "live-1 "+wantBy {
		t.Errorf("Sessions.End(%s), want live-1 by %s", got, wantBy)
	}
	page.waitTrue(t, "no live session", `!document.getElementById("no-live").hidden`)
	// The events list is rendered from the page's own refresh, which may
	// come after the live list emptied: wait for it.
	page.waitTrue(t, "the ended session in the recent events", `/ended a session/.test(document.getElementById("events").innerText)`)
}

// checkText asserts that the request's reason shows literally and ran nothing.
func checkText(t *testing.T, page *cdpPage, id, reason string) {
	t.Helper()
	got := page.eval(t, `document.querySelector('li[data-session="`+id+`"] .reason-text').textContent`)
	if got != reason {
		t.Errorf("reason shown as %q, want %q", got, reason)
	}
	if v := page.eval(t, `typeof window.pwned`); v != "undefined" {
		t.Errorf("markup in the reason ran: window.pwned is %v", v)
	}
	if n := page.eval(t, `document.querySelectorAll('img').length`); n != float64(0) {
		t.Errorf("markup in the reason made %v img elements", n)
	}
}
