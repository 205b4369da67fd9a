package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// Sites (issue 15): one relay serves two customers, organisation Acme
// (sites HQ and Lyon) and Globex (site Main). Everything about an agent is
// filtered on the relay by the caller's sites, and what a caller does not
// reach answers 404 exactly like what does not exist. These tests drive the
// real relay and agents over its REST API (the CLI's site commands are
// tested with the CLI).

// principal is a caller of the API: a person's session token or a token of
// no user.
type principal struct {
	name, role string
	token      string
	org        string // "Acme" or "Globex"; "" for the admin (every site)
	// avoid are strings (compared ignoring case) that no answer to this
	// caller may contain, other than the references it sent itself: the
	// other organisation's name and the IDs of its objects.
	avoid []string
}

// answer is an HTTP answer read whole.
type answer struct {
	status int
	body   string
}

// sitesFleet is the relay, its principals and what they work on.
type sitesFleet struct {
	r  *Relay
	hc *http.Client

	admin, alice, vera, audrey, gustav, bot *principal
	scoped                                  []*principal // every principal but the admin

	hq, lyon, gx, def  apiv1.Site // Acme/HQ, Acme/Lyon, Globex/Main, default/default
	acmeAgent, gxAgent *Agent
	nas                *Agent // enrolled in Globex/Main, never started: hostname globex-nas
	signer             signer

	testplugin, sysinfo, script apiv1.Artifact // published to Acme/HQ+Globex/Main, Globex/Main, Globex/Main
	jobAcme, jobGX, jobBoth     string         // by alice over "all", by gustav over role=kiosk, by the admin over both
	sessAcme, sessGX            string         // alice's and gustav's recorded terminal sessions
	recording                   string         // the recording of sessAcme as the admin reads it
}

// sharedHost is the hostname both running agents report: one in each
// organisation.
const sharedHost = "kiosk-01"

// call sends a request as p with a JSON body (nil: none) and checks that
// the answer mentions nothing p must not see; echo are more strings of the
// request that the answer may repeat.
func (f *sitesFleet) call(t *testing.T, p *principal, method, path string, body any, echo ...string) answer {
	t.Helper()
	return f.do(t, p, method, path, body, nil, echo...)
}

func (f *sitesFleet) do(t *testing.T, p *principal, method, path string, body any, hdr http.Header, echo ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.r.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	res, err := f.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s as %s: %v", method, path, p.name, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil && res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%s %s as %s: read the answer: %v", method, path, p.name, err)
	}
	a := answer{status: res.StatusCode, body: string(b)}
	f.checkLeak(t, p, method, path, a.body, echo...)
	return a
}

// checkLeak fails the test when body mentions something p must not see,
// once the references of the request (path segments, query values, echo)
// are taken out.
func (f *sitesFleet) checkLeak(t *testing.T, p *principal, method, path, body string, echo ...string) {
	t.Helper()
	if len(p.avoid) == 0 {
		return
	}
	u, err := url.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	sent := slices.Clone(echo)
	for _, seg := range strings.Split(u.Path, "/") {
		if s, err := url.PathUnescape(seg); err == nil && s != "" {
			sent = append(sent, s)
		}
	}
	for _, vs := range u.Query() {
		sent = append(sent, vs...)
	}
	// Longest first, so that a reference is taken out before its prefixes.
	slices.SortFunc(sent, func(a, b string) int { return len(b) - len(a) })
	for _, s := range sent {
		body = strings.ReplaceAll(body, s, "")
	}
	low := strings.ToLower(body)
	for _, s := range p.avoid {
		if strings.Contains(low, strings.ToLower(s)) {
			t.Errorf("%s %s as %s (%s of %s): the answer mentions %q, of the other organisation:\n%s",
				method, path, p.name, p.role, p.org, s, tail(body, 2000))
		}
	}
}

// want calls and checks the status; it returns the body.
func (f *sitesFleet) want(t *testing.T, status int, p *principal, method, path string, body any, echo ...string) string {
	t.Helper()
	a := f.call(t, p, method, path, body, echo...)
	if a.status != status {
		t.Fatalf("%s %s as %s: HTTP %d, want %d: %s", method, path, p.name, a.status, status, tail(a.body, 1000))
	}
	return a.body
}

// decodeInto decodes a JSON answer.
func decodeInto(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, tail(body, 1000))
	}
}

// waitJob waits for a job to end by following its event stream (which the
// relay closes after the "end" event) and returns it.
func (f *sitesFleet) waitJob(t *testing.T, id string) apiv1.Job {
	t.Helper()
	body := f.want(t, 200, f.admin, "GET", "/v1/jobs/"+id+"/events", nil)
	if !strings.Contains(body, "event: end") {
		t.Fatalf("job %s: the event stream closed without an end event:\n%s", id, tail(body, 2000))
	}
	var j apiv1.Job
	decodeInto(t, f.want(t, 200, f.admin, "GET", "/v1/jobs/"+id, nil), &j)
	return j
}

// publishTo signs file with the fleet's signer and publishes it to sites
// (?site=, repeatable) as the admin: kind is "plugin" or "script".
func (f *sitesFleet) publishTo(t *testing.T, kind, file string, sites ...string) apiv1.Artifact {
	t.Helper()
	file = copyFile(t, file)
	run(t, nil, "ssh-keygen", "-q", "-Y", "sign", "-n", "patchbay-plugin", "-f", f.signer.Key, file)
	sig, err := os.ReadFile(file + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField(apiv1.PartSig, string(sig))
	if kind == "plugin" {
		mw.WriteField(apiv1.PartManifest, run(t, nil, file, "manifest"))
	}
	fw, _ := mw.CreateFormFile(apiv1.PartFile, filepath.Base(file))
	fw.Write(content)
	mw.Close()
	q := url.Values{"site": sites}
	req, _ := http.NewRequest("POST", f.r.URL+"/v1/"+kind+"s?"+q.Encode(), &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+f.admin.token)
	res, err := f.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("publish %s %s to %v: HTTP %d: %s", kind, filepath.Base(file), sites, res.StatusCode, b)
	}
	var art apiv1.Artifact
	decodeInto(t, string(b), &art)
	return art
}

// newSitesFleet starts the relay, creates the organisations, sites, people
// and tokens through the API, enrolls and starts one agent in Acme/HQ and
// one in Globex/Main (same hostname), publishes the catalog, runs three
// jobs and records one terminal session in each organisation.
func newSitesFleet(t *testing.T) *sitesFleet {
	t.Helper()
	f := &sitesFleet{r: StartRelay(t), signer: newSigner(t, "secops@example.com"),
		hc: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	t.Cleanup(f.hc.CloseIdleConnections)
	f.admin = &principal{name: "admin", role: "admin", token: f.r.AdminToken()}

	// Organisations and sites, names taken refused.
	for _, org := range []string{"Acme", "Globex"} {
		f.want(t, 201, f.admin, "POST", "/v1/organisations", apiv1.OrganisationRequest{Name: org})
	}
	f.want(t, 409, f.admin, "POST", "/v1/organisations", apiv1.OrganisationRequest{Name: "acme"})
	for _, s := range []struct {
		dst       *apiv1.Site
		org, name string
	}{{&f.hq, "Acme", "HQ"}, {&f.lyon, "Acme", "Lyon"}, {&f.gx, "Globex", "Main"}} {
		decodeInto(t, f.want(t, 201, f.admin, "POST", "/v1/sites", apiv1.SiteRequest{Organisation: s.org, Name: s.name}), s.dst)
		if want := s.org + "/" + s.name; s.dst.FullName != want {
			t.Fatalf("site created as %q, want %q", s.dst.FullName, want)
		}
	}
	f.want(t, 409, f.admin, "POST", "/v1/sites", apiv1.SiteRequest{Organisation: "ACME", Name: "hq"})
	f.want(t, 404, f.admin, "POST", "/v1/sites", apiv1.SiteRequest{Organisation: "Initech", Name: "HQ"})
	var all []apiv1.Site
	decodeInto(t, f.want(t, 200, f.admin, "GET", "/v1/sites", nil), &all)
	for _, s := range all {
		if s.FullName == "default/default" {
			f.def = s
		}
	}
	if len(all) != 4 || f.def.ID == "" {
		t.Fatalf("the admin lists %d sites, want default/default and the three made: %+v", len(all), all)
	}

	// One enrollment token per site; the agents report the same hostname.
	enrollToken := func(site string, uses int, tags map[string]string) string {
		var tok apiv1.EnrollToken
		decodeInto(t, f.want(t, 201, f.admin, "POST", "/v1/enroll-tokens", apiv1.EnrollTokenRequest{Site: site, Uses: &uses, Tags: tags}), &tok)
		if tok.Site != site {
			t.Fatalf("enrollment token for %s answers site %q", site, tok.Site)
		}
		return tok.Token
	}
	acmeTok := enrollToken("Acme/HQ", 1, map[string]string{"customer": "acme"})
	gxTok := enrollToken("Globex/Main", 2, map[string]string{"customer": "globex"})
	trust := f.signer.allowedSigners(t)
	f.acmeAgent = f.r.Enroll(acmeTok, "--hostname", sharedHost, "--tags", "role=kiosk", "--trust", trust)
	f.gxAgent = f.r.Enroll(gxTok, "--hostname", sharedHost, "--tags", "role=kiosk", "--trust", trust)
	f.nas = f.r.Enroll(gxTok, "--hostname", "globex-nas")
	for _, a := range []*Agent{f.acmeAgent, f.gxAgent} {
		a.StartWith("--consent-mode", "unattended")
	}
	for _, a := range []*Agent{f.acmeAgent, f.gxAgent} {
		waitFor(t, 30*time.Second, "agent "+a.ID+" online with its SSH host certificate", func() bool {
			var ag apiv1.Agent
			decodeInto(t, f.want(t, 200, f.admin, "GET", "/v1/agents/"+a.ID, nil), &ag)
			_, err := os.Stat(filepath.Join(a.Dir, "ssh_host_ed25519_key-cert.pub"))
			return ag.Online && err == nil
		})
	}

	// People with their sites, and a token of no user granted Globex/Main.
	login := func(name, role, site string) *principal {
		var u apiv1.User
		decodeInto(t, f.want(t, 201, f.admin, "POST", "/v1/users", apiv1.UserRequest{Name: name, Role: role, Sites: []string{site}}), &u)
		if len(u.Sites) != 1 || u.Sites[0] != site || u.Password == "" {
			t.Fatalf("user %s created with sites %v", name, u.Sites)
		}
		var l apiv1.PasswordLogin
		decodeInto(t, f.want(t, 200, &principal{name: "nobody"}, "POST", "/v1/login/password", apiv1.PasswordLoginRequest{User: name, Password: u.Password}), &l)
		if len(l.Sites) != 1 || l.Sites[0] != site {
			t.Fatalf("%s's login answers sites %v, want [%s]", name, l.Sites, site)
		}
		return &principal{name: name, role: role, token: l.Token, org: strings.Split(site, "/")[0]}
	}
	f.alice = login("alice.acme", "technician", "Acme/HQ")
	f.vera = login("vera.acme", "viewer", "Acme/HQ")
	f.audrey = login("audrey.acme", "auditor", "Acme/HQ")
	f.gustav = login("gustav.globex", "technician", "Globex/Main")
	var bot apiv1.APIToken
	decodeInto(t, f.want(t, 201, f.admin, "POST", "/v1/api-tokens", apiv1.APITokenRequest{Role: "technician", Name: "bot.globex", Sites: []string{"Globex/Main"}}), &bot)
	if len(bot.Sites) != 1 || bot.Sites[0] != "Globex/Main" {
		t.Fatalf("token of no user created with sites %v", bot.Sites)
	}
	f.bot = &principal{name: "bot.globex", role: "technician", token: bot.Token, org: "Globex"}
	f.scoped = []*principal{f.alice, f.vera, f.audrey, f.gustav, f.bot}
	for _, p := range f.scoped {
		var w apiv1.Whoami
		decodeInto(t, f.want(t, 200, p, "GET", "/v1/whoami", nil), &w)
		if want := map[string]string{"Acme": "Acme/HQ", "Globex": "Globex/Main"}[p.org]; len(w.Sites) != 1 || w.Sites[0] != want {
			t.Fatalf("whoami of %s: sites %v, want [%s]", p.name, w.Sites, want)
		}
	}

	// The catalog: the test plugin for both customers, sysinfo and a script
	// for Globex only.
	f.testplugin = f.publishTo(t, "plugin", bin("plugins/testplugin"), "Acme/HQ", "Globex/Main")
	f.sysinfo = f.publishTo(t, "plugin", bin("plugins/sysinfo"), "Globex/Main")
	dir := t.TempDir()
	script := filepath.Join(dir, "globex-inventory.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n# patchbay:begin\n# name: globex-inventory\n# description: lists the NAS shares\n# os: linux\n# patchbay:end\necho shares\n"), 0o644)
	f.script = f.publishTo(t, "script", script, "Globex/Main")
	if !slices.Equal(f.testplugin.Sites, []string{"Acme/HQ", "Globex/Main"}) || !slices.Equal(f.sysinfo.Sites, []string{"Globex/Main"}) {
		t.Fatalf("published to %v and %v", f.testplugin.Sites, f.sysinfo.Sites)
	}

	// Jobs: alice over "all" reaches only Acme's agent; gustav's over
	// role=kiosk only Globex's; the admin's over role=kiosk both.
	job := func(p *principal, target, text string, total int, sites ...string) string {
		var j apiv1.Job
		decodeInto(t, f.want(t, 201, p, "POST", "/v1/jobs", apiv1.JobCreate{Plugin: "testplugin", Target: target,
			Params: map[string]string{"mode": "echo", "text": text}}), &j)
		if j.Total != total || !slices.Equal(j.Sites, sites) {
			t.Fatalf("job of %s over %q: %d agents in %v, want %d in %v", p.name, target, j.Total, j.Sites, total, sites)
		}
		return j.ID
	}
	f.jobAcme = job(f.alice, "all", "acme-run", 1, "Acme/HQ")
	f.jobGX = job(f.gustav, "role=kiosk", "globex-run", 1, "Globex/Main")
	f.jobBoth = job(f.admin, "role=kiosk", "both-run", 2, "Acme/HQ", "Globex/Main")
	for id, agents := range map[string][]string{f.jobAcme: {f.acmeAgent.ID}, f.jobGX: {f.gxAgent.ID}, f.jobBoth: {f.acmeAgent.ID, f.gxAgent.ID}} {
		j := f.waitJob(t, id)
		var got []string
		for _, r := range j.Results {
			if r.State != "succeeded" {
				t.Fatalf("job %s: run on %s %s: %s", id, r.AgentID, r.State, r.Error)
			}
			got = append(got, r.AgentID)
		}
		slices.Sort(got)
		slices.Sort(agents)
		if !slices.Equal(got, agents) {
			t.Fatalf("job %s ran on %v, want %v", id, got, agents)
		}
	}

	// A recorded terminal session in each organisation, by its technician.
	f.sessAcme = f.terminalSession(t, f.alice, f.acmeAgent)
	f.sessGX = f.terminalSession(t, f.gustav, f.gxAgent)
	f.recording = f.want(t, 200, f.admin, "GET", "/v1/sessions/"+f.sessAcme+"/recording", nil)

	// What each side must never see of the other.
	f.alice.avoid = f.avoidFor("Globex")
	f.vera.avoid, f.audrey.avoid = f.alice.avoid, f.alice.avoid
	f.gustav.avoid = f.avoidFor("Acme")
	f.bot.avoid = f.gustav.avoid
	return f
}

// avoidFor lists what the people of the other organisation than org must
// never be shown: org's name, its sites, people, agents, jobs, sessions
// and catalog items, and the job over both organisations.
func (f *sitesFleet) avoidFor(org string) []string {
	if org == "Globex" {
		return []string{"globex", f.gx.ID, f.gxAgent.ID, f.nas.ID, f.jobGX, f.jobBoth, f.sessGX, f.sysinfo.SHA256, f.script.SHA256}
	}
	return []string{"acme", f.hq.ID, f.lyon.ID, f.acmeAgent.ID, f.jobAcme, f.jobBoth, f.sessAcme}
}

// terminalSession opens a terminal session as p on agent with stock
// OpenSSH through patchbay's ssh-config, types into it, and returns its ID
// once it is ended with a recording.
func (f *sitesFleet) terminalSession(t *testing.T, p *principal, agent *Agent) string {
	t.Helper()
	cli := f.r.Login(p.token)
	cmd := exec.Command("ssh", "-tt", "-F", cli.sshConfig(t), agent.ID+".patchbay")
	cmd.Env = append(os.Environ(), "PATCHBAY_REASON=INC-15 sites")
	cmd.Stdin = strings.NewReader("echo typed-$((6*7))\nexit\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "typed-42") {
		t.Fatalf("ssh -tt to %s as %s: %v\n%s", agent.ID, p.name, err, out.String())
	}
	var list []apiv1.Session
	decodeInto(t, f.want(t, 200, f.admin, "GET", "/v1/sessions?agent="+agent.ID, nil), &list)
	if len(list) != 1 || list[0].Technician != p.name {
		t.Fatalf("sessions on %s: %+v, want one of %s", agent.ID, list, p.name)
	}
	id := list[0].ID
	waitFor(t, 10*time.Second, "session "+id+" ended with its recording", func() bool {
		var s apiv1.Session
		decodeInto(t, f.want(t, 200, f.admin, "GET", "/v1/sessions/"+id, nil), &s)
		return s.State == "ended" && s.RecordingSize > 0
	})
	return id
}

// jsonField returns the values of field "id" (or another) of a JSON array.
func jsonField(t *testing.T, body, field string) []string {
	t.Helper()
	var list []map[string]any
	decodeInto(t, body, &list)
	out := make([]string, 0, len(list))
	for _, m := range list {
		out = append(out, fmt.Sprint(m[field]))
	}
	return out
}
