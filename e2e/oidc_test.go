package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/patchbay/patchbay/internal/apiv1"
)

// Single sign-on end to end, against a real OpenID provider: zitadel/oidc's
// example provider (e2e/oidcprovider), built from its module and started as
// a process with HTTPS on loopback, one client whose redirect URI is the
// relay's callback, and people in groups. Chromium signs in through the
// relay's "Sign in with SSO" button and the provider's own login page; the
// CLI signs in with patchbay login --sso through the same provider. Then
// the people's groups change at the provider: a removed group ends the
// access at the next sign-in (every token of the person revoked), another
// group gives another role, and an address outside the admitted domain is
// refused.
func TestOIDC(t *testing.T) {
	browser := startBrowser(t)
	dir := t.TempDir()
	opBin := filepath.Join(dir, "oidcprovider")
	if out, err := exec.Command("go", "build", "-o", opBin, "./oidcprovider").CombinedOutput(); err != nil {
		t.Fatalf("build the OpenID provider (zitadel/oidc's example): %v\n%s", err, out)
	}
	r := &Relay{Dir: filepath.Join(t.TempDir(), "relay"), Addr: freePort(t), Heartbeat: "1s", t: t}
	r.URL = "https://" + r.Addr

	secretFile, usersFile := filepath.Join(dir, "client-secret"), filepath.Join(dir, "users.json")
	if err := os.WriteFile(secretFile, []byte("a client secret for patchbay\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type person struct {
		ID            string   `json:"id"`
		Username      string   `json:"username"`
		Password      string   `json:"password"`
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		Name          string   `json:"name"`
		Groups        []string `json:"groups"`
	}
	setPeople := func(people ...person) {
		t.Helper()
		b, _ := json.Marshal(people)
		tmp := usersFile + ".new"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, usersFile); err != nil { // the provider re-reads it at each lookup
			t.Fatal(err)
		}
	}
	dana := person{ID: "u-dana", Username: "dana", Password: "dana's provider password", Email: "dana@example.com",
		EmailVerified: true, Name: "Dana Scully", Groups: []string{"helpdesk", "staff"}}
	mallory := person{ID: "u-mallory", Username: "mallory", Password: "mallory's password", Email: "mallory@elsewhere.test",
		EmailVerified: true, Name: "Mallory M", Groups: []string{"it-admins"}}
	setPeople(dana, mallory)

	op := startProc(t, "oidc provider", nil, opBin, "-tls-dir", dir, "-users", usersFile, "-client-id", "patchbay",
		"-client-secret-file", secretFile, "-redirect-uri", r.URL+"/console/oidc/callback")
	var issuer string
	waitFor(t, 20*time.Second, "the OpenID provider to listen", func() bool {
		if op.exited() {
			t.Fatalf("the OpenID provider exited:\n%s", op.log.String())
		}
		m := regexp.MustCompile(`(?m)^issuer (https://\S+/)$`).FindStringSubmatch(op.log.String())
		if m != nil {
			issuer = m[1]
		}
		return m != nil
	})
	r.Args = []string{"--oidc-issuer", issuer, "--oidc-client-id", "patchbay", "--oidc-client-secret-file", secretFile,
		"--oidc-ca", filepath.Join(dir, "ca.pem"), "--oidc-allowed-domains", "example.com",
		"--oidc-role-map", "helpdesk=technician,it-admins=admin,auditors=viewer",
		// helpdesk supports Acme's HQ only; it-admins every site.
		"--oidc-site-map", "helpdesk=Acme/HQ,it-admins=all"}
	r.Start()
	r.FP = strings.TrimSpace(run(t, nil, bin("patchbay-server"), "fingerprint", "--data", r.Dir))
	adminToken := r.AdminToken()
	admin := r.Login(adminToken)
	// One agent in the default site, one in Acme/HQ: dana, mapped to
	// Acme/HQ by her group, sees only the second.
	other := r.Enroll(admin.Token("--uses", "1")).Start()
	rest := newRESTClient(t, r, adminToken)
	rest.must("POST", "/v1/organisations", `{"name": "Acme"}`, http.StatusCreated, nil)
	rest.must("POST", "/v1/sites", `{"organisation": "Acme", "name": "HQ"}`, http.StatusCreated, nil)
	var acmeToken apiv1.EnrollToken
	rest.must("POST", "/v1/enroll-tokens", `{"site": "Acme/HQ"}`, http.StatusCreated, &acmeToken)
	ag := r.Enroll(acmeToken.Token).Start()
	waitFor(t, 20*time.Second, "agents online", func() bool { return admin.Online(ag.ID) && admin.Online(other.ID) })

	// signIn drives the console's SSO button and the provider's login page.
	signIn := func(t *testing.T, p *page, who person) {
		t.Helper()
		p.run(t, chromedp.Navigate(r.URL+"/"))
		p.waitJS(t, "the SSO button", `document.querySelector('#login-sso-card') !== null && !document.querySelector('#login-sso-card').hidden`)
		p.run(t, chromedp.Click("#login-sso"))
		providerLogin(t, p, issuer, who.Username, who.Password)
	}
	users := func() map[string]apiv1.User {
		var list []apiv1.User
		if err := json.Unmarshal([]byte(admin.Run("users", "list", "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		m := map[string]apiv1.User{}
		for _, u := range list {
			m[u.Name] = u
		}
		return m
	}

	danaPage := newPage(t, browser)
	t.Run("first sign-in creates the user with the mapped role and lands on Fleet", func(t *testing.T) {
		signIn(t, danaPage, dana)
		danaPage.waitAcross(t, "Fleet with the agent", `location.hash === '#/fleet' && document.querySelectorAll('#agents tr[data-id]').length === 1`)
		if got := danaPage.str(t, `document.querySelector('#who-name').textContent + ' ' + document.querySelector('#who-role').textContent`); got != "dana@example.com technician" {
			t.Errorf("signed in as %q, want dana@example.com technician", got)
		}
		danaPage.screenshot(t, "sso-fleet")
		u, ok := users()["dana@example.com"]
		if !ok || u.Role != "technician" || u.Source != "oidc" {
			t.Fatalf("users list: %+v (found %v), want dana@example.com, technician, source oidc", u, ok)
		}
		if len(u.Sites) != 1 || u.Sites[0] != "Acme/HQ" {
			t.Errorf("dana's sites = %v, want [Acme/HQ] (her group helpdesk, by --oidc-site-map)", u.Sites)
		}
		if got := danaPage.str(t, `document.querySelector('#agents tr[data-id]').dataset.id`); got != ag.ID {
			t.Errorf("dana's Fleet shows agent %s, want %s of Acme/HQ (not %s of the default site)", got, ag.ID, other.ID)
		}
		audit := admin.Run("audit", "list")
		for _, action := range []string{"user.create", "login.oidc", "console.login"} {
			if !strings.Contains(audit, action) {
				t.Errorf("audit lacks %s:\n%s", action, audit)
			}
		}
		if !strings.Contains(audit, "oidc "+issuer) {
			t.Errorf("audit does not name the provider %s as the creator:\n%s", issuer, audit)
		}
	})

	danaCLI := &CLI{t: t, env: []string{"PATCHBAY_CONFIG=" + filepath.Join(t.TempDir(), "dana.json")}}
	t.Run("patchbay login --sso through the browser", func(t *testing.T) {
		cli := startProc(t, "patchbay login --sso", danaCLI.env, bin("patchbay"), "login", "--server", r.URL,
			"--ca-fingerprint", r.FP, "--sso", "--no-open")
		var start string
		waitFor(t, 20*time.Second, "the sign-in address", func() bool {
			start = regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(r.URL) + `/console/oidc/start\?\S+$`).FindString(cli.log.String())
			return start != ""
		})
		p := newPage(t, browser)
		p.run(t, chromedp.Navigate(start))
		providerLogin(t, p, issuer, dana.Username, dana.Password)
		p.waitAcross(t, "the CLI's result page", `document.querySelector('#result') !== null`)
		if got := p.str(t, `document.querySelector('#result').textContent`); !strings.Contains(got, "Signed in to Patchbay as dana@example.com (technician)") {
			t.Fatalf("the CLI's page says %q", got)
		}
		select {
		case <-cli.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("patchbay login --sso did not finish:\n%s", cli.log.String())
		}
		if code := cli.cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(cli.log.String(), "as dana@example.com (technician)") {
			t.Fatalf("patchbay login --sso exited %d:\n%s", code, cli.log.String())
		}
		if agents := danaCLI.Agents(""); len(agents) != 1 || agents[0].ID != ag.ID {
			t.Errorf("dana lists %+v", agents)
		}
		var who apiv1.Whoami
		if err := json.Unmarshal([]byte(danaCLI.Run("whoami", "-o", "json")), &who); err != nil || who.User != "dana@example.com" || who.Role != "technician" ||
			len(who.Sites) != 1 || who.Sites[0] != "Acme/HQ" {
			t.Errorf("whoami: %+v %v", who, err)
		}
		// The default site's agent is not even confirmed to exist.
		if _, errOut, err := try(danaCLI.env, bin("patchbay"), "agents", "show", other.ID); err == nil || !strings.Contains(errOut, "no agent") {
			t.Errorf("dana shows the default site's agent: %v %s", err, errOut)
		}
	})

	t.Run("a removed group ends the access at the next sign-in", func(t *testing.T) {
		dana.Groups = []string{"staff"}
		setPeople(dana, mallory)
		p := newPage(t, browser)
		signIn(t, p, dana)
		p.waitAcross(t, "the refusal", `location.host === '`+r.Addr+`' && document.querySelector('#banner') !== null && !document.querySelector('#banner').hidden && document.querySelector('#login-sso') !== null`)
		msg := p.str(t, `document.querySelector('#banner').textContent`)
		if !strings.Contains(msg, "none of your groups maps to a Patchbay role") || !strings.Contains(msg, "your groups: staff") {
			t.Errorf("refusal shown: %q", msg)
		}
		p.screenshot(t, "sso-refused")
		// Every token of dana's is revoked: the CLI's session and the console's.
		if _, errOut, err := try(danaCLI.env, bin("patchbay"), "agents", "list"); err == nil || !strings.Contains(errOut, "revoked") {
			t.Errorf("dana's CLI after the group was removed: %v %s", err, errOut)
		}
		if got := eval[float64](t, danaPage, `fetch('/v1/whoami', {credentials: 'same-origin'}).then(r => r.status)`); got != 401 {
			t.Errorf("dana's console session after the group was removed: GET /v1/whoami = %v, want 401", got)
		}
		if audit := admin.Run("audit", "list"); !strings.Contains(audit, "login.oidc.refused") {
			t.Errorf("audit lacks login.oidc.refused:\n%s", audit)
		}
	})

	t.Run("another group gives another role at the next sign-in", func(t *testing.T) {
		dana.Groups = []string{"staff", "it-admins", "helpdesk"}
		setPeople(dana, mallory)
		p := newPage(t, browser)
		signIn(t, p, dana)
		p.waitAcross(t, "Fleet with every site's agents", `location.hash === '#/fleet' && document.querySelectorAll('#agents tr[data-id]').length === 2`)
		if got := p.str(t, `document.querySelector('#who-role').textContent`); got != "admin" {
			t.Errorf("role shown = %q, want admin (the highest of technician and admin)", got)
		}
		if u := users()["dana@example.com"]; u.Role != "admin" || len(u.Sites) != 1 || u.Sites[0] != "all" {
			t.Errorf("dana's role = %q, sites %v, want admin of all sites (it-admins=all)", u.Role, u.Sites)
		}
		if audit := admin.Run("audit", "list"); !strings.Contains(audit, "user.role") || !strings.Contains(audit, "user.sites") {
			t.Errorf("audit lacks user.role or user.sites:\n%s", audit)
		}
	})

	t.Run("an address outside the admitted domains is refused", func(t *testing.T) {
		p := newPage(t, browser)
		signIn(t, p, mallory)
		p.waitAcross(t, "the refusal", `location.host === '`+r.Addr+`' && document.querySelector('#banner') !== null && !document.querySelector('#banner').hidden && document.querySelector('#login-sso') !== null`)
		if msg := p.str(t, `document.querySelector('#banner').textContent`); !strings.Contains(msg, "mallory@elsewhere.test is not in a domain this relay admits (example.com)") {
			t.Errorf("refusal shown: %q", msg)
		}
		if _, ok := users()["mallory@elsewhere.test"]; ok {
			t.Error("a refused person became a user")
		}
	})
}

// waitAcross is waitJS across navigations (the sign-in goes relay ->
// provider -> relay): a poll whose document went away starts again in the
// new one.
func (p *page) waitAcross(t *testing.T, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithDeadline(p.ctx, deadline)
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(time.Until(deadline))))
		cancel()
		if err == nil {
			return
		}
		msg := err.Error()
		if time.Now().After(deadline) || !(strings.Contains(msg, "Cannot find context") || strings.Contains(msg, "navigated or closed") ||
			strings.Contains(msg, "context was destroyed")) {
			t.Fatalf("waiting for %s: %v\npage: %s", what, err, p.text())
		}
	}
}

// providerLogin fills in the provider's own login page (zitadel/oidc's
// example: username, password, Login).
func providerLogin(t *testing.T, p *page, issuer, user, password string) {
	t.Helper()
	host := strings.TrimSuffix(strings.TrimPrefix(issuer, "https://"), "/")
	p.waitAcross(t, "the provider's login page", `location.host === '`+host+`' && document.querySelector('#username') !== null`)
	p.run(t, chromedp.SendKeys("#username", user), chromedp.SendKeys("#password", password),
		chromedp.Click(`button[type="submit"]`))
}
