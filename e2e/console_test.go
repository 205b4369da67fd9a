package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium is Debian's Chromium, driven headless through chromedp.
const chromium = "/usr/bin/chromium"

// The web console in a real browser against a real relay and real agents.
// One relay, one set of agents and one Chromium serve every subtest; each
// person gets their own browser context (cookie jar).
func TestConsole(t *testing.T) {
	browser := startBrowser(t)
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	paris := admin.Token("--tags", "site=paris", "--uses", "2")
	oslo := admin.Token("--tags", "site=oslo", "--uses", "1")
	// The agents trust a signer (for the Run a fix form's jobs); the first
	// approves sessions through a consent script (for the Sessions screen).
	good := newSigner(t, "secops@example.com")
	trust := good.allowedSigners(t)
	consent := filepath.Join(t.TempDir(), "consent.sh")
	if err := os.WriteFile(consent, []byte("#!/bin/sh\ncat >/dev/null\necho by=jane\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	agents := []*Agent{r.Enroll(paris, "--trust", trust).StartWith("--consent-backend", "exec:"+consent),
		r.Enroll(paris, "--trust", trust).Start(), r.Enroll(oslo, "--trust", trust).Start()}
	leaving := agents[2]
	for _, a := range agents {
		waitFor(t, 20*time.Second, "agent "+a.ID+" online", func() bool { return admin.Online(a.ID) })
	}
	admin.publish(t, good, bin("plugins/testplugin"))
	viewerToken := strings.TrimSpace(admin.Run("api-tokens", "create", "--role", "viewer", "--name", "console-viewer"))

	adminPage := newPage(t, browser)
	link := strings.TrimSpace(admin.Run("console", "--no-open"))
	if !strings.HasPrefix(link, r.URL+"/login#pbl_") {
		t.Fatalf("patchbay console printed %q, want %s/login#pbl_...", link, r.URL)
	}

	t.Run("link logs in and lands on Fleet", func(t *testing.T) {
		adminPage.run(t, chromedp.Navigate(link))
		adminPage.waitJS(t, "three agent rows", `document.querySelectorAll('#agents tr[data-id]').length === 3`)
		adminPage.waitJS(t, "the live stream", `document.querySelector('#live').dataset.state === 'open'`)
		if got := adminPage.str(t, `location.href`); strings.Contains(got, "pbl_") || !strings.HasSuffix(got, "/#/fleet") {
			t.Errorf("address after login = %q: want the secret gone and the Fleet screen", got)
		}
		for _, a := range agents {
			row := adminPage.str(t, fmt.Sprintf(`document.querySelector('tr[data-id="%s"]').innerText`, a.ID))
			if !strings.Contains(row, "online") || !strings.Contains(row, "linux") || !strings.Contains(row, "site=") {
				t.Errorf("row of %s = %q: want online, OS and tags", a.ID, row)
			}
		}
		if got := adminPage.str(t, `document.querySelector('#who-role').textContent`); got != "admin" {
			t.Errorf("role shown = %q, want admin", got)
		}
		if !adminPage.bool(t, `document.querySelector('[data-action="run"]') !== null`) {
			t.Error("an admin sees no Run button")
		}
		adminPage.screenshot(t, "fleet")
		if out := admin.Run("audit", "list"); !strings.Contains(out, "console.login") || !strings.Contains(out, "console.link") {
			t.Errorf("audit log lacks console.link and console.login:\n%s", out)
		}
	})

	t.Run("link works once", func(t *testing.T) {
		p := newPage(t, browser)
		p.run(t, chromedp.Navigate(link))
		p.waitJS(t, "the login form", `document.querySelector('#login-form') !== null`)
		msg := p.str(t, `document.querySelector('#banner').textContent`)
		if !strings.Contains(msg, "already used or expired") {
			t.Errorf("banner after a used link = %q", msg)
		}
		if p.bool(t, `document.querySelector('#agents') !== null`) {
			t.Error("a used link still shows the fleet")
		}
		p.screenshot(t, "link-used")
	})

	t.Run("search by selector narrows the list", func(t *testing.T) {
		adminPage.run(t, chromedp.SendKeys("#search", "site=paris"))
		adminPage.waitJS(t, "two paris rows", `document.querySelectorAll('#agents tr[data-id]').length === 2 &&
			[...document.querySelectorAll('#agents tr[data-id]')].every(tr => tr.innerText.includes('site=paris'))`)
		if got := adminPage.str(t, `document.querySelector('#fleet-count').textContent`); !strings.HasPrefix(got, "2 agents") {
			t.Errorf("count = %q, want 2 agents", got)
		}
		adminPage.screenshot(t, "fleet-search")
		// Free text: the tail of an ID (the head of a v7 UUID is its time).
		tail := leaving.ID[len(leaving.ID)-12:]
		adminPage.search(t, tail)
		adminPage.waitJS(t, "one row for the ID", fmt.Sprintf(`document.querySelectorAll('#agents tr[data-id]').length === 1 &&
			document.querySelector('tr[data-id="%s"]') !== null`, leaving.ID))
		// A broken selector says why.
		adminPage.search(t, "site in (paris")
		adminPage.waitJS(t, "the selector error", `!document.querySelector('#search-error').hidden &&
			document.querySelector('#search-error').textContent.includes('selector')`)
		adminPage.search(t, "")
		adminPage.waitJS(t, "all rows again", `document.querySelectorAll('#agents tr[data-id]').length === 3`)
	})

	t.Run("viewer sees no Run button and the API refuses", func(t *testing.T) {
		p := newPage(t, browser)
		p.run(t, chromedp.Navigate(r.URL+"/"))
		p.waitJS(t, "the login form", `document.querySelector('#login-token') !== null`)
		p.run(t, chromedp.SendKeys("#login-token", viewerToken), chromedp.Click(`#login-form button[type="submit"]`))
		p.waitJS(t, "three agent rows", `document.querySelectorAll('#agents tr[data-id]').length === 3`)
		if got := p.str(t, `document.querySelector('#who-role').textContent`); got != "viewer" {
			t.Errorf("role shown = %q, want viewer", got)
		}
		if p.bool(t, `document.querySelector('[data-action="run"]') !== null`) {
			t.Error("a viewer sees a Run button")
		}
		p.screenshot(t, "fleet-viewer")
		// With the right CSRF token the API still refuses a viewer's revoke.
		status, body := p.fetch(t, "POST", "/v1/agents/"+agents[0].ID+"/revoke", true)
		if status != http.StatusForbidden || !strings.Contains(body, "admin role") {
			t.Errorf("viewer revoke = %d %s, want 403 naming the admin role", status, body)
		}
	})

	t.Run("forged POST without CSRF token is refused", func(t *testing.T) {
		// From the admin's own page: the role would allow it, the missing
		// token does not.
		status, body := adminPage.fetch(t, "POST", "/v1/agents/"+agents[0].ID+"/revoke", false)
		if status != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("POST without CSRF token = %d %s, want 403 naming the CSRF token", status, body)
		}
		status, body = adminPage.fetch(t, "POST", "/v1/api-tokens", false)
		if status != http.StatusForbidden {
			t.Errorf("POST /v1/api-tokens without CSRF token = %d %s, want 403", status, body)
		}
		for _, a := range admin.Agents("") {
			if a.Revoked {
				t.Errorf("agent %s revoked by a forged request", a.ID)
			}
		}
		if out := admin.Run("api-tokens", "list"); strings.Count(out, "\n") != 3 { // header, admin, viewer
			t.Errorf("api tokens after forged requests:\n%s", out)
		}
	})

	t.Run("missing or ended cookie gets 401, forged Origin 403", func(t *testing.T) {
		cc := newConsoleClient(t, r)
		cookie := adminPage.cookie(t, r.URL)
		if s, b := cc.call("GET", "/v1/agents", "", "", "", ""); s != 401 {
			t.Errorf("no cookie: %d %s, want 401", s, b)
		}
		if s, b := cc.call("GET", "/v1/agents", "pbs_made-up", r.URL, "", ""); s != 401 || !strings.Contains(b, "log in again") {
			t.Errorf("unknown cookie: %d %s, want 401", s, b)
		}
		if s, b := cc.call("GET", "/v1/agents", cookie, r.URL, "", ""); s != 200 {
			t.Fatalf("the page's own cookie: %d %s, want 200", s, b)
		}
		csrf := adminPage.str(t, `fetch('/console/session').then(r => r.json()).then(s => s.csrf)`)
		for _, c := range []struct{ method, path string }{{"GET", "/v1/agents"}, {"GET", "/console/events"}, {"POST", "/v1/api-tokens"}, {"POST", "/console/logout"}} {
			if s, b := cc.call(c.method, c.path, cookie, "https://evil.example", csrf, ""); s != 403 || !strings.Contains(b, "Origin") {
				t.Errorf("%s %s from a forged Origin: %d %s, want 403 naming the Origin", c.method, c.path, s, b)
			}
		}
		// A second session, logged out: its cookie is dead.
		p := newPage(t, browser)
		second := strings.TrimSpace(admin.Run("console", "--no-open"))
		p.run(t, chromedp.Navigate(second))
		p.waitJS(t, "three agent rows", `document.querySelectorAll('#agents tr[data-id]').length === 3`)
		old := p.cookie(t, r.URL)
		p.run(t, chromedp.Click("#logout"))
		p.waitJS(t, "the login form", `document.querySelector('#login-form') !== null`)
		p.screenshot(t, "logged-out")
		if s, b := cc.call("GET", "/v1/agents", old, r.URL, "", ""); s != 401 || !strings.Contains(b, "log in again") {
			t.Errorf("logged-out cookie: %d %s, want 401", s, b)
		}
		if out := admin.Run("audit", "list"); !strings.Contains(out, "console.logout") {
			t.Errorf("audit log lacks console.logout:\n%s", out)
		}
	})

	jobID := consoleScreens(t, r, admin, adminPage, agents[0])
	consoleViewer(t, browser, r, viewerToken, jobID, agents[0].ID)

	t.Run("an agent going offline shows without reloading", func(t *testing.T) {
		row := fmt.Sprintf(`document.querySelector('tr[data-id="%s"]')`, leaving.ID)
		adminPage.bool(t, `window.notReloaded = true`)
		adminPage.waitJS(t, "the live stream", `document.querySelector('#live').dataset.state === 'open'`)
		adminPage.waitJS(t, "the agent online", row+` !== null && `+row+`.dataset.online === 'true'`)
		leaving.proc.stop(t)
		adminPage.waitJS(t, "the agent offline", row+` !== null && `+row+`.dataset.online === 'false' && `+row+`.innerText.includes('offline')`)
		if !adminPage.bool(t, `window.notReloaded === true`) {
			t.Error("the page reloaded")
		}
		adminPage.screenshot(t, "fleet-offline")
	})

	// Last, since it edits the relay's database behind its back.
	t.Run("the audit chain verifies in the page, and an edited record does not", func(t *testing.T) {
		verify := func() (class, text string) {
			adminPage.goTo(t, "#/audit", `document.querySelector('#audit-screen')?.dataset.loaded === 'true'`)
			adminPage.run(t, chromedp.Click("#audit-verify"))
			adminPage.waitJS(t, "the verification", `document.querySelector('#audit-verified').dataset.done === 'true'`)
			return adminPage.str(t, `document.querySelector('#audit-verified').className`),
				adminPage.str(t, `document.querySelector('#audit-verified').textContent`)
		}
		if class, text := verify(); class != "ok" || !strings.Contains(text, "The whole chain verifies") {
			t.Fatalf("intact chain: %s %q", class, text)
		}
		adminPage.screenshot(t, "audit-verified")
		db, err := sql.Open("sqlite", "file:"+filepath.Join(r.Dir, "patchbay.db")+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`UPDATE audit_log SET actor = 'nobody' WHERE seq = 2`); err != nil {
			t.Fatal(err)
		}
		if class, text := verify(); class != "error" || !strings.Contains(text, "audit record 2: hash does not match") {
			t.Fatalf("edited chain: %s %q; want record 2 named", class, text)
		}
		adminPage.screenshot(t, "audit-tampered")
	})
}

// startBrowser starts headless Chromium for the whole test. It fails when
// Chromium is missing.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the console tests drive Chromium, and %s is missing: apt-get install -y chromium (.ci/run does)", chromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors", true), // the relay's own CA
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 860))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return ctx
}

// page is one tab in its own browser context (its own cookies).
type page struct{ ctx context.Context }

func newPage(t *testing.T, browser context.Context) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first call opens the tab for the context's lifetime: no timeout here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a browser tab: %v", err)
	}
	return &page{ctx: ctx}
}

func (p *page) run(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v\npage: %s", err, p.text())
	}
}

// text is the page's visible text, for failure messages.
func (p *page) text() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	return s
}

// waitJS waits until the expression is true (polled by Chromium on every
// animation frame).
func (p *page) waitJS(t *testing.T, what, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for %s: %v\npage: %s", what, err, p.text())
	}
}

// eval evaluates expr in the page, awaiting a promise, and decodes its value.
func eval[T any](t *testing.T, p *page, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v\npage: %s", expr, err, p.text())
	}
	return v
}

func (p *page) str(t *testing.T, expr string) string { t.Helper(); return eval[string](t, p, expr) }

func (p *page) bool(t *testing.T, expr string) bool { t.Helper(); return eval[bool](t, p, expr) }

// search replaces the Fleet screen's search text, as pasting it would.
func (p *page) search(t *testing.T, text string) {
	t.Helper()
	p.bool(t, fmt.Sprintf(`(() => { const s = document.querySelector('#search'); s.value = %q;
		s.dispatchEvent(new Event('input')); return true })()`, text))
}

// fetch sends a request from the page, with the session's CSRF token or
// without, and returns the status and body.
func (p *page) fetch(t *testing.T, method, path string, withCSRF bool) (int, string) {
	t.Helper()
	js := fmt.Sprintf(`(async () => {
		const headers = {'Content-Type': 'application/json'};
		if (%t) headers['X-CSRF-Token'] = (await (await fetch('/console/session')).json()).csrf;
		const r = await fetch(%q, {method: %q, headers, body: '{}', credentials: 'same-origin'});
		return JSON.stringify({status: r.status, body: await r.text()});
	})()`, withCSRF, path, method)
	var res struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	if err := json.Unmarshal([]byte(p.str(t, js)), &res); err != nil {
		t.Fatal(err)
	}
	return res.Status, res.Body
}

// cookie returns the page's session cookie for the relay.
func (p *page) cookie(t *testing.T, url string) string {
	t.Helper()
	var val string
	p.run(t, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
		if err != nil {
			return err
		}
		for _, c := range res.Cookies {
			if c.Name == "__Host-patchbay_session" {
				val = c.Value
				if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict {
					t.Errorf("session cookie: HttpOnly=%v Secure=%v SameSite=%v, want HttpOnly, Secure, Strict", c.HTTPOnly, c.Secure, c.SameSite)
				}
			}
		}
		return nil
	}))
	if val == "" {
		t.Fatal("the page has no session cookie")
	}
	return val
}

// screenshot saves the page as NAME.png in the test's artifact directory.
func (p *page) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(png) < 1000 {
		t.Fatalf("screenshot %s: %d bytes", name, len(png))
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
}
