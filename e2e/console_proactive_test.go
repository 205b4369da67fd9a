package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/patchbay/patchbay/internal/apiv1"
)

// setForm sets the values of a form's fields (by CSS selector), as typing
// and choosing would, and submits it.
func (p *page) setForm(t *testing.T, form string, values map[string]string) {
	t.Helper()
	b, _ := json.Marshal(values)
	if !p.bool(t, fmt.Sprintf(`(() => { for (const [sel, v] of Object.entries(%s)) {
		const e = document.querySelector(sel); if (!e) return false;
		e.value = v; e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change')); }
		document.querySelector(%q).requestSubmit(); return true })()`, b, form)) {
		t.Fatalf("form %s: a field is missing", form)
	}
}

// click clicks the element sel selects.
func (p *page) click(t *testing.T, sel string) {
	t.Helper()
	if !p.bool(t, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true })()`, sel)) {
		t.Fatalf("nothing to click at %s", sel)
	}
}

// The console's Schedules, Policies and Known fixes screens and the agent's
// inventory and checks, against a relay with a real agent: each screen
// shows the relay's data, one action per screen changes what the API
// answers (pause a schedule, delete a policy, add a known fix), and bad
// input in a form shows the relay's own error.
func TestConsoleSchedulesPoliciesKnownFixes(t *testing.T) {
	browser := startBrowser(t)
	r := StartRelay(t)
	cli := r.Login(r.AdminToken())
	signer := newSigner(t, "secops@example.com")
	a := r.Enroll(cli.Token(), "--trust", signer.allowedSigners(t))
	pkgs := startWithSoftware(t, a, "openssl\t3.0.11-1\nfirefox-esr\t115.12.0esr-1\nzlib1g\t1:1.2.13\n")
	waitFor(t, 20*time.Second, "agent online", func() bool { return cli.Online(a.ID) })
	cli.publish(t, signer, bin("plugins/testplugin"))
	target := "id=" + a.ID

	cli.Run("windows", "create", "nights", "--site", "default", "--cron-start", "0 22 * * *", "--duration", "4h", "--tz", "UTC")
	cli.Run("schedules", "create", "nightly", "--cron", "0 3 * * *", "--tz", "Europe/Paris", "--plugin", "testplugin",
		"--target", target, "--param", "mode=echo", "--param", "text=x")
	// disk fails (a disk is never 100% free); tmp passes (an empty directory).
	dir := t.TempDir()
	cli.Run("policies", "create", "disk", "--target", target, "--check", "builtin:disk-space", "--param", "path="+dir, "--threshold", "100", "--interval", "10s")
	cli.Run("policies", "create", "tmp", "--target", target, "--check", "builtin:dir-size", "--param", "path="+dir, "--threshold", "1000000000", "--interval", "10s")
	var alert apiv1.Alert
	waitFor(t, 60*time.Second, "both checks reported and the failing one alerted", func() bool {
		var list []apiv1.Alert
		decodeInto(t, cli.Run("alerts", "list", "--state", "open", "--agent", a.ID, "-o", "json"), &list)
		for _, x := range list {
			if x.Kind == "check" {
				alert = x
			}
		}
		return alert.ID != "" && len(cli.policy(t, "disk").States) == 1 && len(cli.policy(t, "tmp").States) == 1
	})
	// An upgrade, for the software history.
	if err := os.WriteFile(pkgs, []byte("openssl\t3.0.14-1\nfirefox-esr\t115.12.0esr-1\nzlib1g\t1:1.2.13\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cli.Run("inventory", "refresh", a.ID)
	waitFor(t, 30*time.Second, "the upgrade in the history", func() bool {
		return strings.Contains(cli.Run("inventory", "history", a.ID, "-o", "json"), "3.0.14-1")
	})

	p := newPage(t, browser)
	p.run(t, chromedp.Navigate(strings.TrimSpace(cli.Run("console", "--no-open"))))
	p.waitJS(t, "the Fleet screen", `document.querySelectorAll('#agents tr[data-id]').length === 1`)

	// Schedules: the schedule and window; Pause; a bad window and a patch
	// policy whose plugin is not published are refused with the relay's words.
	sc := cli.schedule(t, "nightly")
	p.goTo(t, "#/schedules", `document.querySelector('#schedules')?.dataset.loaded === 'true'`)
	row := p.str(t, fmt.Sprintf(`document.querySelector('#schedules tr[data-id="%s"]').innerText`, sc.ID))
	for _, want := range []string{"nightly", "job", "0 3 * * *", "Europe/Paris", "never"} {
		if !strings.Contains(row, want) {
			t.Errorf("schedule row %q lacks %q", row, want)
		}
	}
	if got := p.str(t, `document.querySelector('#windows tbody').innerText`); !strings.Contains(got, "default/default") || !strings.Contains(got, "nights") {
		t.Errorf("windows: %q", got)
	}
	p.click(t, fmt.Sprintf(`#schedules tr[data-id="%s"] button[data-action="pause"]`, sc.ID))
	p.waitJS(t, "the schedule paused", fmt.Sprintf(`document.querySelector('#schedules tr[data-id="%s"]')?.dataset.paused === 'true'`, sc.ID))
	if !cli.schedule(t, "nightly").Paused {
		t.Error("Pause in the console did not pause the schedule")
	}
	p.waitJS(t, "the site lists", `document.querySelector('#window-site').options.length > 1 && document.querySelector('#patch-site').options.length > 1`)
	p.setForm(t, "#window-form", map[string]string{"#window-site": "00000000-0000-7000-8000-000000000002", "#window-name": "bad", "#window-cron": "61 * * * *", "#window-duration": "1h"})
	p.waitJS(t, "the window form's error", `!document.querySelector('[data-form-error="window-form"]').hidden`)
	if got := p.str(t, `document.querySelector('[data-form-error="window-form"]').textContent`); !strings.Contains(got, "want 5 fields") {
		t.Errorf("bad window cron: %q", got)
	}
	p.waitJS(t, "the window list", `document.querySelector('#patch-window').options.length === 2`)
	p.setForm(t, "#patch-form", map[string]string{"#patch-site": "00000000-0000-7000-8000-000000000002", "#patch-window": cli.windowID(t, "nights")})
	p.waitJS(t, "the patch form's error", `!document.querySelector('[data-form-error="patch-form"]').hidden`)
	if got := p.str(t, `document.querySelector('[data-form-error="patch-form"]').textContent`); !strings.Contains(got, "patchinstall") {
		t.Errorf("patch policy without patchinstall: %q", got)
	}
	if n := len(cli.schedulesList(t)); n != 1 {
		t.Errorf("%d schedules after the refused forms, want 1", n)
	}
	p.screenshot(t, "schedules")

	// Policies: each policy's agents by state; Delete tmp; a bad interval.
	p.goTo(t, "#/policies", `document.querySelector('#policies')?.dataset.loaded === 'true'`)
	disk := p.str(t, `document.querySelector('#policies tr[data-name="disk"]').innerText`)
	for _, want := range []string{"builtin:disk-space", target, "10s", "0 passing", "1 failing", alert.Hostname} {
		if !strings.Contains(disk, want) {
			t.Errorf("policy row %q lacks %q", disk, want)
		}
	}
	if got := p.str(t, `document.querySelector('#policies tr[data-name="tmp"] [data-count="passed"]').textContent`); got != "1 passing" {
		t.Errorf("tmp: %q", got)
	}
	p.setForm(t, "#policy-form", map[string]string{"#policy-name": "fast", "#policy-check": "builtin:disk-space", "#policy-target": "all", "#policy-interval": "1s"})
	p.waitJS(t, "the policy form's error", `!document.querySelector('[data-form-error="policy-form"]').hidden`)
	if got := p.str(t, `document.querySelector('[data-form-error="policy-form"]').textContent`); !strings.Contains(got, `interval "1s"`) {
		t.Errorf("bad interval: %q", got)
	}
	p.click(t, `#policies tr[data-name="tmp"] button[data-action="delete"]`)
	p.click(t, `#policies tr[data-name="tmp"] button[data-confirm="yes"]`)
	p.waitJS(t, "tmp gone", `document.querySelector('#policies tr[data-name="tmp"]') === null && document.querySelector('#policies tr[data-name="disk"]') !== null`)
	var policies []apiv1.Policy
	decodeInto(t, cli.Run("policies", "list", "-o", "json"), &policies)
	if len(policies) != 1 || policies[0].Name != "disk" {
		t.Errorf("policies after Delete: %+v", policies)
	}
	p.screenshot(t, "policies")

	// Known fixes: a bad name is refused; one for the failing check is
	// added, found, and offered for the open alert, filled in on Run a fix.
	p.goTo(t, "#/known-fixes", `document.querySelector('#known-fixes')?.dataset.loaded === 'true'`)
	fix := map[string]string{"#kf-name": "Disk Full", "#kf-check": alert.Check, "#kf-plugin": "testplugin", "#kf-params": "mode=echo\ntext=cleared", "#kf-title": "Disk full"}
	p.setForm(t, "#kf-form", fix)
	p.waitJS(t, "the known fix form's error", `!document.querySelector('[data-form-error="kf-form"]').hidden`)
	if got := p.str(t, `document.querySelector('[data-form-error="kf-form"]').textContent`); !strings.Contains(got, `name "Disk Full"`) {
		t.Errorf("bad name: %q", got)
	}
	fix["#kf-name"] = "disk-full"
	p.setForm(t, "#kf-form", fix)
	p.waitJS(t, "the known fix listed", `document.querySelector('#known-fixes tr[data-name="disk-full"]') !== null`)
	var kf apiv1.KnownFix
	decodeInto(t, cli.Run("known-fixes", "show", "disk-full", "-o", "json"), &kf)
	if kf.Plugin != "testplugin" || kf.Check != alert.Check || kf.Params["text"] != "cleared" || !strings.Contains(kf.CreatedBy, "admin") {
		t.Errorf("known fix made in the console: %+v", kf)
	}
	p.bool(t, `(() => { const s = document.querySelector('#kf-search'); s.value = 'nothing-like-it'; s.dispatchEvent(new Event('input')); return true })()`)
	p.waitJS(t, "an empty search", `document.querySelector('#known-fixes').dataset.query === 'nothing-like-it' && document.querySelector('#known-fixes tr.empty') !== null`)
	p.bool(t, `(() => { const s = document.querySelector('#kf-search'); s.value = 'disk'; s.dispatchEvent(new Event('input')); return true })()`)
	p.waitJS(t, "the search finds it", `document.querySelector('#known-fixes').dataset.query === 'disk' && document.querySelector('#known-fixes tr[data-name="disk-full"]') !== null`)
	p.waitJS(t, "the fix offered for the alert", fmt.Sprintf(`document.querySelector('#known-fixes-offered tr[data-alert="%s"] a[data-action="offer"]') !== null`, alert.ID))
	p.screenshot(t, "known-fixes")
	p.click(t, fmt.Sprintf(`#known-fixes-offered tr[data-alert="%s"] a[data-action="offer"]`, alert.ID))
	p.waitJS(t, "Run a fix filled in", `document.querySelector('#run-form')?.dataset.loaded === 'true' && document.querySelector('#param-text')?.value === 'cleared'`)
	if got := p.str(t, `[document.querySelector('#run-pick').value, document.querySelector('#run-target').value, document.querySelector('#param-mode').value].join(' ')`); got != "plugin:testplugin "+target+" echo" {
		t.Errorf("Run a fix offered with %q", got)
	}

	// The agent: its checks, hardware, software (searched) and history.
	p.goTo(t, "#/agent/"+a.ID, `document.querySelector('#agent-inventory')?.dataset.loaded === 'true'`)
	if got := p.str(t, `document.querySelector('#agent-checks tr[data-policy="disk"]').innerText`); !strings.Contains(got, "failed") || !strings.Contains(got, "builtin:disk-space") {
		t.Errorf("agent's disk check: %q", got)
	}
	if !p.bool(t, `document.querySelector('#agent-hardware').innerText.includes('Memory')`) {
		t.Error("no hardware shown")
	}
	p.bool(t, `(() => { const s = document.querySelector('#software-search'); s.value = 'openssl'; s.dispatchEvent(new Event('input')); return true })()`)
	if got := p.str(t, `[...document.querySelectorAll('#agent-software tr[data-name]')].map((r) => [...r.cells].slice(0, 2).map((c) => c.textContent).join(' ')).join('|')`); got != "openssl 3.0.14-1" {
		t.Errorf("software search for openssl: %q", got)
	}
	if got := p.str(t, `document.querySelector('#agent-software').innerText`); strings.Contains(got, "null") || strings.Contains(got, "shown") {
		t.Errorf("software box: %q", got)
	}
	if got := p.str(t, `document.querySelector('#agent-history tr[data-change="upgraded"]')?.innerText || ''`); !strings.Contains(got, "3.0.11-1 → 3.0.14-1") {
		t.Errorf("history: %q", got)
	}
	p.screenshot(t, "agent-inventory")
}

// windowID returns the ID of the maintenance window named name.
func (c *CLI) windowID(t *testing.T, name string) string {
	t.Helper()
	var ws []apiv1.Window
	decodeInto(t, c.Run("windows", "list", "-o", "json"), &ws)
	i := slices.IndexFunc(ws, func(w apiv1.Window) bool { return w.Name == name })
	if i < 0 {
		t.Fatalf("no window %s in %+v", name, ws)
	}
	return ws[i].ID
}

func (c *CLI) schedulesList(t *testing.T) []apiv1.Schedule {
	t.Helper()
	var out []apiv1.Schedule
	decodeInto(t, c.Run("schedules", "list", "-o", "json"), &out)
	return out
}
