package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// The console's sites: an organisation with two sites, a real agent in
// each, a technician granted only the first. The technician's console shows
// only their site's agent, names their site in the header and offers no
// verification of the whole audit chain; the admin's shows both agents,
// whose site filter narrows the Fleet and the audit log, and moves an agent
// to the other site from its screen.
func TestConsoleSites(t *testing.T) {
	browser := startBrowser(t)
	r := StartRelay(t)
	adminToken := r.AdminToken()
	admin := r.Login(adminToken)
	rest := newRESTClient(t, r, adminToken)

	rest.must("POST", "/v1/organisations", `{"name":"Acme"}`, http.StatusCreated, nil)
	var hq, lyon apiv1.Site
	rest.must("POST", "/v1/sites", `{"organisation":"Acme","name":"HQ"}`, http.StatusCreated, &hq)
	rest.must("POST", "/v1/sites", `{"organisation":"Acme","name":"Lyon"}`, http.StatusCreated, &lyon)
	if hq.FullName != "Acme/HQ" || lyon.FullName != "Acme/Lyon" {
		t.Fatalf("sites created: %+v %+v", hq, lyon)
	}
	signer := newSigner(t, "secops@example.com")
	trust := signer.allowedSigners(t)
	enroll := func(site, hostname string) *Agent {
		var tok apiv1.EnrollToken
		rest.must("POST", "/v1/enroll-tokens", `{"site":"`+site+`"}`, http.StatusCreated, &tok)
		if tok.Site != site {
			t.Fatalf("enrollment token for %s names site %q", site, tok.Site)
		}
		return r.Enroll(tok.Token, "--hostname", hostname, "--trust", trust)
	}
	// HQ's agent approves sessions through a consent script (for the Sessions screen).
	consent := filepath.Join(t.TempDir(), "consent.sh")
	if err := os.WriteFile(consent, []byte("#!/bin/sh\ncat >/dev/null\necho by=jane\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	hqAgent := enroll("Acme/HQ", "hq-01").StartWith("--consent-backend", "exec:"+consent)
	lyonAgent := enroll("Acme/Lyon", "lyon-01").Start()
	for _, a := range []*Agent{hqAgent, lyonAgent} {
		waitFor(t, 20*time.Second, "agent "+a.ID+" online", func() bool { return admin.Online(a.ID) })
	}
	admin.publish(t, signer, bin("plugins/testplugin")) // to every site
	const techPW = "tess's long passphrase"
	var tess apiv1.User
	rest.must("POST", "/v1/users", `{"name":"tess","role":"technician","password":"`+techPW+`","sites":["Acme/HQ"]}`, http.StatusCreated, &tess)
	if strings.Join(tess.Sites, ",") != "Acme/HQ" {
		t.Fatalf("tess's sites = %q, want Acme/HQ", tess.Sites)
	}
	rows := `[...document.querySelectorAll('#agents tr[data-id]')]`
	auditRows := `[...document.querySelectorAll('#audit tr[data-seq]')]`

	tech := newPage(t, browser)
	t.Run("a technician of one site sees only its agent", func(t *testing.T) {
		tech.run(t, chromedp.Navigate(r.URL+"/"))
		tech.waitJS(t, "the password form", `document.querySelector('#login-user') !== null`)
		tech.run(t, chromedp.SendKeys("#login-user", "tess"), chromedp.SendKeys("#login-password", techPW),
			chromedp.Click(`#login-password-form button[type="submit"]`))
		tech.waitJS(t, "the fleet loaded", `document.querySelector('#fleet')?.dataset.loaded === 'true'`)
		tech.waitJS(t, "the header's sites", `document.querySelector('#who-sites').textContent !== ''`)
		if got := tech.str(t, rows+`.map(tr => tr.dataset.id).join(' ')`); got != hqAgent.ID {
			t.Errorf("technician's fleet rows = %q, want only %s (hq-01)", got, hqAgent.ID)
		}
		if got := tech.str(t, `document.querySelector('#agents tr[data-id] td.site')?.textContent ?? ''`); got != "Acme/HQ" {
			t.Errorf("site shown for hq-01 = %q, want Acme/HQ", got)
		}
		if got := tech.str(t, `document.querySelector('#who-role').textContent + ' ' + document.querySelector('#who-sites').textContent`); got != "technician · Acme/HQ" {
			t.Errorf("header = %q, want technician · Acme/HQ", got)
		}
		tech.waitJS(t, "the site filter filled", `document.querySelector('#fleet-site').dataset.loaded === 'true'`)
		if got := tech.str(t, `[...document.querySelector('#fleet-site').options].map(o => o.textContent).join('|')`); got != "All my sites|Acme/HQ" {
			t.Errorf("technician's site filter offers %q, want All my sites|Acme/HQ", got)
		}
		tech.screenshot(t, "sites-fleet-technician")
		// The other site's agent does not exist for the technician.
		tech.goTo(t, "#/agent/"+lyonAgent.ID, `[...document.querySelectorAll('#agent-screen .error')].some(e => !e.hidden && e.textContent.includes('no agent'))`)
		tech.goTo(t, "#/agent/"+hqAgent.ID, `document.querySelector('#agent-screen')?.dataset.loaded === 'true'`)
		if got := tech.str(t, `document.querySelector('#agent-site').textContent`); got != "Acme/HQ" {
			t.Errorf("agent screen site = %q, want Acme/HQ", got)
		}
		if tech.bool(t, `document.querySelector('#agent-move-open') !== null`) {
			t.Error("a technician is offered Move to site")
		}
	})

	t.Run("a technician's audit log: their site's records, no whole-chain verification", func(t *testing.T) {
		tech.goTo(t, "#/audit", `document.querySelector('#audit-screen')?.dataset.loaded === 'true'`)
		if tech.bool(t, `(() => { const b = document.querySelector('#audit-verify'); return !!b && !b.hidden && !b.disabled })()`) {
			t.Error("a technician of one site is offered Verify the whole chain")
		}
		if note := tech.str(t, `(n => n && !n.hidden ? n.textContent : '')(document.querySelector('#audit-verify-note'))`); !strings.Contains(note, "needs every record") {
			t.Errorf("the note on verification = %q", note)
		}
		if tech.bool(t, `[...document.querySelectorAll('#audit-screen .error')].some(e => !e.hidden && e.textContent !== '')`) {
			t.Errorf("the technician's audit screen shows an error:\n%s", tech.text())
		}
		// Only records about Acme/HQ, with the site named.
		tech.waitJS(t, "the HQ records", auditRows+`.length > 0`)
		if got := tech.str(t, auditRows+`.filter(tr => !tr.innerText.includes('site: Acme/HQ')).map(tr => tr.innerText).join('\n')`); got != "" {
			t.Errorf("the technician sees records not about Acme/HQ:\n%s", got)
		}
		tech.screenshot(t, "sites-audit-technician")
	})

	t.Run("a technician's Sessions screen names the site", func(t *testing.T) {
		cc := newConsoleClient(t, r)
		cc.openSession(cc.login(adminToken), hqAgent.ID, "INC-sites", "shell").Close()
		tech.goTo(t, "#/sessions", `document.querySelector('#sessions')?.dataset.loaded === 'true' &&
			document.querySelector('.sessions tr[data-id]') !== null`)
		if got := tech.str(t, `[...document.querySelectorAll('.sessions tr[data-id]')].map(tr => tr.querySelector('td.site').textContent).join(' ')`); got != "Acme/HQ" {
			t.Errorf("the technician's sessions' sites = %q, want Acme/HQ", got)
		}
	})

	t.Run("a technician's job from the Run form names its site", func(t *testing.T) {
		tech.goTo(t, "#/catalog", `document.querySelector('#catalog-screen')?.dataset.loaded === 'true'`)
		if got := tech.str(t, `document.querySelector('#catalog tr[data-kind="plugin"] td.sites')?.textContent ?? ''`); got != "all sites" {
			t.Errorf("the catalog's testplugin is published to %q, want all sites", got)
		}
		tech.goTo(t, "#/run?target=all", `document.querySelector('#run-form')?.dataset.loaded === 'true'`)
		tech.waitJS(t, "the count of matching agents", `document.querySelector('#run-count').dataset.count === '1'`)
		tech.waitJS(t, "the note on the technician's sites", `!document.querySelector('#run-sites').hidden`)
		if got := tech.str(t, `document.querySelector('#run-sites').textContent`); !strings.Contains(got, "Acme/HQ") {
			t.Errorf("the Run form's note on sites = %q", got)
		}
		tech.bool(t, `(() => { const s = document.querySelector('#run-pick'); s.value = 'plugin:testplugin';
			s.dispatchEvent(new Event('change')); return true })()`)
		tech.run(t, chromedp.SendKeys("#run-reason", "sites test"), chromedp.Click("#run-submit"))
		tech.waitJS(t, "the job done", `location.hash.startsWith('#/job/') && document.querySelector('#job-screen')?.dataset.final === 'true'`)
		if got := tech.str(t, `document.querySelector('#job-meta').textContent`); !strings.Contains(got, " · site Acme/HQ · ") {
			t.Errorf("job meta = %q, want its site Acme/HQ", got)
		}
		tech.screenshot(t, "sites-job-technician")
	})

	adminPage := newPage(t, browser)
	t.Run("an admin sees both sites and the filter narrows the fleet", func(t *testing.T) {
		adminPage.run(t, chromedp.Navigate(strings.TrimSpace(admin.Run("console", "--no-open"))))
		adminPage.waitJS(t, "two agent rows", rows+`.length === 2`)
		adminPage.waitJS(t, "the header's sites", `document.querySelector('#who-sites').textContent !== ''`)
		if got := adminPage.str(t, `document.querySelector('#who-role').textContent + ' ' + document.querySelector('#who-sites').textContent`); got != "admin · all sites" {
			t.Errorf("header = %q, want admin · all sites", got)
		}
		for _, c := range []struct{ id, site string }{{hqAgent.ID, "Acme/HQ"}, {lyonAgent.ID, "Acme/Lyon"}} {
			if got := adminPage.str(t, fmt.Sprintf(`document.querySelector('tr[data-id="%s"] td.site').textContent`, c.id)); got != c.site {
				t.Errorf("site of %s = %q, want %s", c.id, got, c.site)
			}
		}
		adminPage.waitJS(t, "the site filter filled", `document.querySelector('#fleet-site').dataset.loaded === 'true'`)
		if got := adminPage.str(t, `[...document.querySelector('#fleet-site').options].map(o => o.textContent).join('|')`); got != "All my sites|Acme/HQ|Acme/Lyon|default/default" {
			t.Errorf("admin's site filter offers %q", got)
		}
		adminPage.pickSite(t, "#fleet-site", "Acme/Lyon")
		adminPage.waitJS(t, "only the Lyon agent", fmt.Sprintf(rows+`.length === 1 && document.querySelector('tr[data-id="%s"]') !== null`, lyonAgent.ID))
		if got := adminPage.str(t, `location.hash`); !strings.Contains(got, "site="+lyon.ID) {
			t.Errorf("address after filtering = %q, want site=%s kept", got, lyon.ID)
		}
		if got := adminPage.str(t, `document.querySelector('#fleet-count').textContent`); !strings.HasPrefix(got, "1 agent ") {
			t.Errorf("count = %q, want 1 agent", got)
		}
		adminPage.screenshot(t, "sites-fleet-admin-lyon")
		// A selector and the site filter together; then the site that has none.
		adminPage.search(t, "hostname=hq-*")
		adminPage.waitJS(t, "no agent of Lyon named hq-*", `document.querySelector('#agents tr.empty') !== null && `+rows+`.length === 0`)
		adminPage.search(t, "")
		adminPage.pickSite(t, "#fleet-site", "default/default")
		adminPage.waitJS(t, "the empty default site", `document.querySelector('#agents tr.empty')?.textContent === 'No agent in this site.'`)
		adminPage.pickSite(t, "#fleet-site", "All my sites")
		adminPage.waitJS(t, "both agents again", rows+`.length === 2`)
	})

	t.Run("an admin's audit site filter, in the rows and the Export links", func(t *testing.T) {
		adminPage.goTo(t, "#/audit", `document.querySelector('#audit-screen')?.dataset.loaded === 'true'`)
		if !adminPage.bool(t, `(b => !!b && !b.hidden)(document.querySelector('#audit-verify'))`) {
			t.Error("an admin is not offered Verify the whole chain")
		}
		if got := adminPage.str(t, `document.querySelector('#audit-links')?.className ?? ''`); got != "ok" {
			t.Errorf("chain check = %q: %s", got, adminPage.str(t, `document.querySelector('#audit-head').textContent`))
		}
		// Unfiltered: relay-wide records (the logins) too.
		adminPage.waitJS(t, "relay-wide records", auditRows+`.some(tr => tr.innerText.includes('console.login'))`)
		adminPage.pickSite(t, "#audit-site", "Acme/Lyon")
		adminPage.waitJS(t, "only Lyon's records", fmt.Sprintf(`document.querySelector('#audit').dataset.filtered?.includes('site=%s') && `+
			auditRows+`.length > 0 && `+auditRows+`.every(tr => tr.innerText.includes('site: Acme/Lyon'))`, lyon.ID))
		for _, id := range []string{"#audit-export-csv", "#audit-export-jsonl"} {
			if href := adminPage.str(t, `document.querySelector('`+id+`').getAttribute('href')`); !strings.Contains(href, "site="+lyon.ID) {
				t.Errorf("%s = %q, want site=%s", id, href, lyon.ID)
			}
		}
		jsonl := adminPage.str(t, `fetch(document.querySelector('#audit-export-jsonl').href).then(r => r.text())`)
		lines := strings.Split(strings.TrimSpace(jsonl), "\n")
		for _, l := range lines {
			var rec struct {
				Action string            `json:"action"`
				Detail map[string]string `json:"detail"`
			}
			if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Detail["site"] != lyon.ID {
				t.Errorf("exported record not about Lyon (%v): %s", err, l)
			}
		}
		if len(lines) == 0 || !strings.Contains(jsonl, "enroll-token.create") {
			t.Errorf("Lyon's export lacks its enrollment token's record:\n%s", jsonl)
		}
		adminPage.screenshot(t, "sites-audit-admin-lyon")
		adminPage.pickSite(t, "#audit-site", "All my sites")
		adminPage.waitJS(t, "every record again", auditRows+`.some(tr => tr.innerText.includes('console.login'))`)
	})

	t.Run("an admin moves an agent to another site from its screen", func(t *testing.T) {
		adminPage.goTo(t, "#/agent/"+lyonAgent.ID, `document.querySelector('#agent-screen')?.dataset.loaded === 'true'`)
		if got := adminPage.str(t, `document.querySelector('#agent-site').textContent`); got != "Acme/Lyon" {
			t.Errorf("agent screen site = %q, want Acme/Lyon", got)
		}
		adminPage.run(t, chromedp.Click("#agent-move-open"))
		adminPage.waitJS(t, "the other sites", `document.querySelector('#agent-move')?.dataset.loaded === 'true'`)
		if got := adminPage.str(t, `[...document.querySelector('#agent-move-site').options].map(o => o.textContent).join('|')`); got != "Choose a site…|Acme/HQ|default/default" {
			t.Errorf("Move offers %q", got)
		}
		adminPage.pickSite(t, "#agent-move-site", "Acme/HQ")
		adminPage.run(t, chromedp.Click("#agent-move-submit"))
		adminPage.waitJS(t, "the agent in HQ", `document.querySelector('#agent-site').textContent === 'Acme/HQ' &&
			document.querySelector('#agent-moved').textContent === 'Moved to Acme/HQ.'`)
		adminPage.screenshot(t, "sites-agent-moved")
		// The relay agrees, and the technician of HQ now sees it.
		var moved apiv1.Agent
		rest.must("GET", "/v1/agents/"+lyonAgent.ID, "", http.StatusOK, &moved)
		if moved.Site != "Acme/HQ" || moved.SiteID != hq.ID {
			t.Errorf("relay says the agent is in %q (%s), want Acme/HQ", moved.Site, moved.SiteID)
		}
		tech.goTo(t, "#/fleet?sort=-hostname", `document.querySelector('#fleet')?.dataset.loaded === 'true'`)
		tech.waitJS(t, "both agents, now in HQ", rows+`.length === 2 && `+rows+`.every(tr => tr.querySelector('td.site').textContent === 'Acme/HQ')`)
		tech.screenshot(t, "sites-fleet-technician-after-move")
	})
}

// pickSite chooses the option labelled label in the select sel, as a person
// does (input and change events).
func (p *page) pickSite(t *testing.T, sel, label string) {
	t.Helper()
	if !p.bool(t, fmt.Sprintf(`(() => { const s = document.querySelector(%q);
		const o = [...s.options].find(o => o.textContent === %q);
		if (!o) return false;
		s.value = o.value;
		s.dispatchEvent(new Event('input', {bubbles: true}));
		s.dispatchEvent(new Event('change', {bubbles: true}));
		return true })()`, sel, label)) {
		t.Fatalf("%s has no option %q: %s", sel, label, p.str(t, fmt.Sprintf(`[...document.querySelector(%q).options].map(o => o.textContent).join('|')`, sel)))
	}
}

// restClient calls the relay's REST API with a bearer token.
type restClient struct {
	t     *testing.T
	r     *Relay
	token string
	hc    *http.Client
}

func newRESTClient(t *testing.T, r *Relay, token string) *restClient {
	return &restClient{t: t, r: r, token: token, hc: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
}

// must sends body (JSON, or none when empty), fails the test unless the
// answer has status want, and decodes the answer into out (when not nil).
func (c *restClient) must(method, path, body string, want int, out any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.r.URL+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}
