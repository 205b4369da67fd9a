package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// goTo switches the console to a screen (a fragment route) and waits until
// the screen says it has loaded its data.
func (p *page) goTo(t *testing.T, hash, loaded string) {
	t.Helper()
	p.bool(t, fmt.Sprintf(`(location.hash = %q, true)`, hash))
	p.waitJS(t, hash, loaded)
}

// consoleScreens drives the Run a fix, Job, Agent, Sessions, Audit and
// Catalog screens as the admin and returns the dry-run job's ID.
func consoleScreens(t *testing.T, r *Relay, admin *CLI, p *page, agent *Agent) string {
	var jobID string
	t.Run("a dry run from the Run form shows live progress and results", func(t *testing.T) {
		p.goTo(t, "#/run?target=site%3Dparis", `document.querySelector('#run-form')?.dataset.loaded === 'true'`)
		p.waitJS(t, "the count of matching agents", `document.querySelector('#run-count').dataset.count === '2'`)
		p.bool(t, `(() => { const s = document.querySelector('#run-pick'); s.value = 'plugin:testplugin';
			s.dispatchEvent(new Event('change')); return true })()`)
		p.waitJS(t, "the manifest's fields", `document.querySelector('#param-sleep') !== null && document.querySelector('#param-lines').type === 'number'`)
		// A bad duration is refused in the browser: no job.
		p.run(t, chromedp.SendKeys("#param-sleep", "soon"), chromedp.Click("#run-submit"))
		p.waitJS(t, "the field's error", `document.querySelector('#param-sleep-error').textContent.includes('not a duration')`)
		if !strings.HasPrefix(p.str(t, `location.hash`), "#/run") {
			t.Fatal("a job was started with an invalid parameter")
		}
		// The API checks again (a form bypassed).
		status, body := p.post(t, "/v1/jobs", `{"plugin":"testplugin","target":"site=paris","params":{"sleep":"soon"},"dry_run":true}`)
		if status != http.StatusBadRequest || !strings.Contains(body, "sleep") {
			t.Errorf("a bad parameter through the API = %d %s, want 400 naming it", status, body)
		}
		p.bool(t, `(document.querySelector('#param-sleep').value = '', true)`)
		p.run(t, chromedp.SendKeys("#param-text", "<b>not markup</b>"), chromedp.SendKeys("#run-reason", "console test"))
		if !p.bool(t, `document.querySelector('#run-dry').checked`) {
			t.Error("the form does not default to a dry run")
		}
		p.screenshot(t, "run")
		p.run(t, chromedp.Click("#run-submit"))
		p.waitJS(t, "the job screen", `location.hash.startsWith('#/job/') && document.querySelector('#job-screen') !== null`)
		jobID = strings.TrimPrefix(p.str(t, `location.hash`), "#/job/")
		p.waitJS(t, "the job done", `document.querySelector('#job-screen').dataset.final === 'true' &&
			document.querySelectorAll('#results tr[data-state="succeeded"]').length === 2`)
		if got := p.str(t, `document.querySelector('#job-bar').value + '/' + document.querySelector('#job-bar').max`); got != "2/2" {
			t.Errorf("progress bar = %s, want 2/2", got)
		}
		if got := p.str(t, `document.querySelector('#job-counts').textContent`); !strings.Contains(got, "succeeded 2") {
			t.Errorf("counts = %q, want succeeded 2", got)
		}
		if got := p.str(t, `document.querySelector('#job-rate').textContent`); !strings.Contains(got, "2/2") || !strings.Contains(got, "/s") {
			t.Errorf("rate = %q", got)
		}
		if title := p.str(t, `document.querySelector('#job-screen h1').textContent`); !strings.HasPrefix(title, "Dry run") {
			t.Errorf("title = %q", title)
		}
		j := admin.job(t, jobID)
		if !j.DryRun || j.Params["text"] != "<b>not markup</b>" || j.Reason != "console test" || j.Total != 2 {
			t.Errorf("job created by the form = %+v", j)
		}
		if p.bool(t, `document.querySelector('#results b') !== null`) {
			t.Error("a parameter became markup")
		}
		p.bool(t, `(document.querySelectorAll('#results details').forEach(d => d.open = true), true)`)
		csv := p.str(t, fmt.Sprintf(`fetch('/v1/jobs/%s/export?format=csv').then(r => r.text())`, jobID))
		if !strings.HasPrefix(csv, "run_id,") || strings.Count(csv, "\n") < 3 {
			t.Errorf("CSV export:\n%s", csv)
		}
		p.screenshot(t, "job")
		p.goTo(t, "#/jobs", `document.querySelector('#jobs-screen')?.dataset.loaded === 'true'`)
		if !p.bool(t, fmt.Sprintf(`document.querySelector('#jobs tr[data-id="%s"]') !== null`, jobID)) {
			t.Error("the jobs list lacks the job")
		}
		p.screenshot(t, "jobs")
	})

	t.Run("agent, sessions, audit and catalog screens", func(t *testing.T) {
		waitFor(t, 10*time.Second, "agent host certificate", func() bool {
			_, err := os.Stat(filepath.Join(agent.Dir, "ssh_host_ed25519_key-cert.pub"))
			return err == nil
		})
		if out := admin.Run("ssh", agent.ID, "--reason", "INC-42 <script>", "--", "echo", "hi"); out != "hi\n" {
			t.Fatalf("patchbay ssh = %q", out)
		}
		p.goTo(t, "#/agent/"+agent.ID, `document.querySelector('#agent-screen')?.dataset.loaded === 'true'`)
		facts := p.str(t, `document.querySelector('#agent-facts').innerText`)
		if !strings.Contains(facts, agent.ID) || !strings.Contains(facts, "linux") || !strings.Contains(facts, "site=paris") {
			t.Errorf("agent facts:\n%s", facts)
		}
		if !p.bool(t, fmt.Sprintf(`document.querySelector('#agent-runs tr[data-job="%s"]') !== null`, jobID)) {
			t.Errorf("the agent's recent jobs lack %s", jobID)
		}
		if got := p.str(t, `document.querySelector('#agent-screen [data-action="terminal"]').getAttribute('href')`); !strings.HasPrefix(got, "#/terminal?agent="+agent.ID) {
			t.Errorf("Terminal link = %q", got)
		}
		if !strings.Contains(p.str(t, `document.querySelector('.sessions').innerText`), "INC-42 <script>") {
			t.Error("the agent's sessions lack the session")
		}
		p.screenshot(t, "agent")
		p.run(t, chromedp.Click(`[data-action="run"]`))
		p.waitJS(t, "the form aimed at the agent", fmt.Sprintf(`document.querySelector('#run-target')?.value === 'id=%s' &&
			document.querySelector('#run-count').dataset.count === '1'`, agent.ID))

		p.goTo(t, "#/sessions", `document.querySelector('#sessions')?.dataset.loaded === 'true'`)
		row := p.str(t, `document.querySelector('.sessions tr[data-id]').innerText`)
		for _, want := range []string{"INC-42 <script>", "approved", "jane", "admin"} {
			if !strings.Contains(row, want) {
				t.Errorf("session row lacks %q: %s", want, row)
			}
		}
		p.screenshot(t, "sessions")

		p.goTo(t, "#/audit", `document.querySelector('#audit-screen')?.dataset.loaded === 'true'`)
		if got := p.str(t, `document.querySelector('#audit-links').className`); got != "ok" {
			t.Errorf("chain check = %s: %s", got, p.str(t, `document.querySelector('#audit-head').textContent`))
		}
		p.run(t, chromedp.SendKeys("#audit-action", "job.create"))
		p.waitJS(t, "only job.create", `[...document.querySelectorAll('#audit tr[data-seq]')].length > 0 &&
			[...document.querySelectorAll('#audit tr[data-seq]')].every(tr => tr.innerText.includes('job.create'))`)
		p.screenshot(t, "audit")
		// The relay filtered them, and the Export links carry the filters.
		if got := p.str(t, `document.querySelector('#audit').dataset.filtered`); !strings.Contains(got, "action=job.create") {
			t.Errorf("the audit rows were not asked of the relay with the filter: %q", got)
		}
		csv := p.str(t, `fetch(document.querySelector('#audit-export-csv').href).then(r => r.text())`)
		if lines := strings.Split(strings.TrimSpace(csv), "\n"); !strings.HasPrefix(lines[0], "seq,time,actor,action") || len(lines) < 2 ||
			!strings.Contains(lines[1], ",job.create,") || strings.Contains(csv, ",console.login,") {
			t.Errorf("Export CSV with action job.create:\n%s", csv)
		}
		if href := p.str(t, `document.querySelector('#audit-export-jsonl').getAttribute('href')`); href != "/v1/audit/export?action=job.create&format=jsonl" {
			t.Errorf("Export JSON lines link = %q", href)
		}
		// The agent filter takes a hostname, resolved by the relay; a bad
		// filter shows the relay's message.
		p.bool(t, `(document.querySelector('#audit-action').value = '') === ''`)
		p.run(t, chromedp.SendKeys("#audit-agent", "nosuchhost"))
		p.waitJS(t, "the relay's refusal of an unknown agent", `[...document.querySelectorAll('#audit-screen .error')].some(e => !e.hidden && e.textContent.includes('agent: no agent with ID, ID prefix or hostname'))`)
		p.bool(t, `(document.querySelector('#audit-agent').value = '') === ''`)
		p.run(t, chromedp.SendKeys("#audit-agent", agent.ID[:23]))
		p.waitJS(t, "the records about the agent", `[...document.querySelectorAll('#audit tr[data-seq]')].length > 0 &&
			[...document.querySelectorAll('#audit tr[data-seq]')].some(tr => tr.innerText.includes('session.approved'))`)

		p.goTo(t, "#/catalog", `document.querySelector('#catalog-screen')?.dataset.loaded === 'true'`)
		cat := p.str(t, `document.querySelector('#catalog').innerText`)
		if !strings.Contains(cat, "testplugin") || !strings.Contains(cat, "SHA256:") {
			t.Errorf("catalog:\n%s", cat)
		}
		p.screenshot(t, "catalog")
	})
	consoleLiveJob(t, p)
	consolePlayback(t, r, p, agent.ID)
	p.goTo(t, "#/fleet", `document.querySelector('#fleet')?.dataset.loaded === 'true'`)
	return jobID
}

// consoleViewer checks that a viewer sees no Run, Cancel or End buttons
// and that the API refuses those actions anyway.
func consoleViewer(t *testing.T, browser context.Context, r *Relay, token, jobID, agentID string) {
	t.Run("viewer sees no Run, Cancel or End buttons", func(t *testing.T) {
		p := newPage(t, browser)
		p.run(t, chromedp.Navigate(r.URL+"/"))
		p.waitJS(t, "the login form", `document.querySelector('#login-token') !== null`)
		p.run(t, chromedp.SendKeys("#login-token", token), chromedp.Click(`#login-form button[type="submit"]`))
		p.waitJS(t, "the fleet", `document.querySelectorAll('#agents tr[data-id]').length > 0`)
		for _, s := range []struct{ hash, loaded string }{
			{"#/job/" + jobID, `document.querySelector('#job-screen')?.dataset.final === 'true'`},
			{"#/agent/" + agentID, `document.querySelector('#agent-screen')?.dataset.loaded === 'true'`},
			{"#/sessions", `document.querySelector('#sessions')?.dataset.loaded === 'true'`},
			{"#/catalog", `document.querySelector('#catalog-screen')?.dataset.loaded === 'true'`},
			{"#/run", `document.querySelector('#run-screen') !== null`},
			{"#/schedules", `document.querySelector('#schedules')?.dataset.loaded === 'true'`},
			{"#/policies", `document.querySelector('#policies')?.dataset.loaded === 'true'`},
			{"#/known-fixes", `document.querySelector('#known-fixes')?.dataset.loaded === 'true'`},
		} {
			p.goTo(t, s.hash, s.loaded)
			if p.bool(t, `document.querySelector('#main [data-action], #job-cancel, #run-form, #main a[href^="#/run"], #window-form, #patch-form, #policy-form, #kf-form') !== null`) {
				t.Errorf("a viewer sees an action on %s: %s", s.hash, p.text())
			}
		}
		p.screenshot(t, "viewer-run")
		for path, body := range map[string]string{
			"/v1/jobs/" + jobID + "/cancel": `{}`,
			"/v1/jobs":                      `{"plugin":"testplugin","target":"all","dry_run":true}`,
		} {
			if status, resp := p.post(t, path, body); status != http.StatusForbidden {
				t.Errorf("viewer POST %s = %d %s, want 403", path, status, resp)
			}
		}
	})
}

// post sends a JSON POST from the page with the session's CSRF token.
func (p *page) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	js := fmt.Sprintf(`(async () => {
		const csrf = (await (await fetch('/console/session')).json()).csrf;
		const r = await fetch(%q, {method: 'POST', body: %q, credentials: 'same-origin',
			headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf}});
		return r.status + ' ' + await r.text();
	})()`, path, body)
	s, b, _ := strings.Cut(p.str(t, js), " ")
	var status int
	fmt.Sscan(s, &status)
	return status, b
}
