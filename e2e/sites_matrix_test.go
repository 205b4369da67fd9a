package e2e

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// TestSites is the roles x sites matrix of issue 15 over a relay shared by
// two organisations: every route that names an object answers 404 for an
// object of a site the caller does not reach, exactly as for one that does
// not exist (never 403, never 200), and what the role allows for one of
// its own sites; lists and the audit log show nothing of the other
// organisation; selectors never reach across; a recording is read by its
// technician, auditors and admins of its site only; moving an agent is
// seen at once and audited in both sites.
func TestSites(t *testing.T) {
	f := newSitesFleet(t)
	t.Run("Matrix", f.testMatrix)
	t.Run("SharedHostname", f.testSharedHostname)
	t.Run("Lists", f.testLists)
	t.Run("OpenJobs", f.testOpenJobs)
	t.Run("Selectors", f.testSelectors)
	t.Run("Catalog", f.testCatalog)
	t.Run("Recording", f.testRecording)
	t.Run("Audit", f.testAudit)
	t.Run("AdminRoutes", f.testAdminRoutes)
	t.Run("ConsoleEvents", f.testConsoleEvents)
	t.Run("Move", f.testMove) // last: it changes what the others check
}

// object is a reference to an agent, job or session as a caller sends it,
// with the organisation it belongs to ("" for the job over both).
type object struct {
	ref, org string
}

// objRoute is a route that names one object.
type objRoute struct {
	method, path string // path with %s where the reference goes
	kind         string // agent, job or session
	min          string // the least role the route needs
	hdr          http.Header
	inHdr        http.Header // headers for an object of the caller's sites, when not hdr
	body         func(o object) any
	echo         func() []string // more strings the answer to a caller of the route may show
	// in is the status for an object of the caller's sites when the role
	// is enough.
	in        func(p *principal, o object) int
	skipAdmin bool // the admin would change the fleet (revoke)
}

// prefix is an ID prefix that names one object among all.
func prefix(id string) string { return id[:23] }

// objects returns the references to the objects of kind that belong to
// org ("" for the admin: every one).
func (f *sitesFleet) objects(kind, org string) []object {
	var out []object
	add := func(o string, ids ...string) {
		for _, id := range ids {
			out = append(out, object{id, o}, object{prefix(id), o})
		}
	}
	switch kind {
	case "agent":
		if org != "Globex" {
			add("Acme", f.acmeAgent.ID)
		}
		if org != "Acme" {
			add("Globex", f.gxAgent.ID)
		}
	case "job":
		if org != "Globex" {
			add("Acme", f.jobAcme)
		}
		if org != "Acme" {
			add("Globex", f.jobGX)
		}
		if org == "" {
			add("", f.jobBoth)
		}
	case "session":
		if org != "Globex" {
			add("Acme", f.sessAcme)
		}
		if org != "Acme" {
			add("Globex", f.sessGX)
		}
	}
	return out
}

// others returns the references to the objects of kind that p does not
// reach: the other organisation's, and the job over both.
func (f *sitesFleet) others(kind string, p *principal) []object {
	other := map[string]string{"Acme": "Globex", "Globex": "Acme"}[p.org]
	out := f.objects(kind, other)
	switch {
	case kind == "job":
		out = append(out, object{f.jobBoth, ""}, object{prefix(f.jobBoth), ""})
	case kind == "agent" && p.org == "Acme":
		out = append(out, object{f.nas.ID, "Globex"}, object{"globex-nas", "Globex"})
	}
	return out
}

// owner reports whether p started job o or opened session o.
func (f *sitesFleet) owner(p *principal, o object) bool {
	switch {
	case strings.HasPrefix(f.jobAcme, o.ref), strings.HasPrefix(f.sessAcme, o.ref):
		return p == f.alice
	case strings.HasPrefix(f.jobGX, o.ref), strings.HasPrefix(f.sessGX, o.ref):
		return p == f.gustav
	}
	return false
}

func (f *sitesFleet) objRoutes() []objRoute {
	ok := func(*principal, object) int { return 200 }
	upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Protocol": {apiv1.SessionSubprotocol}}
	// For its own agents the caller sends a subprotocol the relay refuses
	// with 400 once it has found the agent: no session is opened.
	wrongProto := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Protocol": {"not-patchbay"}}
	siteOf := func(o object) any {
		return apiv1.AgentSiteRequest{Site: map[string]string{"Acme": "Acme/HQ", "Globex": "Globex/Main"}[o.org]}
	}
	return []objRoute{
		{method: "GET", path: "/v1/agents/%s", kind: "agent", min: "viewer", in: ok},
		// An agent's runs show what ran on it, also for a job over several
		// sites that its technicians cannot open.
		{method: "GET", path: "/v1/agents/%s/runs", kind: "agent", min: "viewer", in: ok,
			echo: func() []string { return []string{f.jobBoth} }},
		{method: "GET", path: "/v1/agents/%s/session?reason=INC-15", kind: "agent", min: "technician", hdr: upgrade, inHdr: wrongProto,
			in: func(*principal, object) int { return 400 }},
		{method: "POST", path: "/v1/agents/%s/revoke", kind: "agent", min: "admin", skipAdmin: true},
		// Moving an agent to its own site changes nothing.
		{method: "POST", path: "/v1/agents/%s/site", kind: "agent", min: "admin", body: siteOf, in: ok},
		{method: "GET", path: "/v1/jobs/%s", kind: "job", min: "viewer", in: ok},
		{method: "GET", path: "/v1/jobs/%s/export", kind: "job", min: "viewer", in: ok},
		{method: "GET", path: "/v1/jobs/%s/export?format=csv", kind: "job", min: "viewer", in: ok},
		{method: "GET", path: "/v1/jobs/%s/events", kind: "job", min: "viewer", in: ok},
		{method: "POST", path: "/v1/jobs/%s/cancel", kind: "job", min: "technician",
			in: func(p *principal, o object) int {
				if p == f.admin || f.owner(p, o) {
					return 200 // ended: nothing left to cancel
				}
				return 403
			}},
		{method: "GET", path: "/v1/sessions/%s", kind: "session", min: "viewer", in: ok},
		{method: "GET", path: "/v1/sessions/%s/recording", kind: "session", min: "viewer",
			in: func(p *principal, o object) int {
				if p.role == "admin" || p.role == "auditor" || f.owner(p, o) {
					return 200
				}
				return 403
			}},
		{method: "POST", path: "/v1/sessions/%s/end", kind: "session", min: "technician",
			in: func(p *principal, o object) int {
				if p == f.admin || f.owner(p, o) {
					return 409 // ended already: not live
				}
				return 403
			}},
	}
}

// normal takes the reference out of an answer, to compare the answers for
// an object out of reach and for one that does not exist.
func normal(a answer, ref string) string {
	return fmt.Sprintf("%d %s", a.status, strings.ReplaceAll(a.body, ref, "REF"))
}

func (f *sitesFleet) testMatrix(t *testing.T) {
	for _, rt := range f.objRoutes() {
		for _, p := range append([]*principal{f.admin}, f.scoped...) {
			if p == f.admin && rt.skipAdmin {
				continue
			}
			t.Run(strings.ReplaceAll(rt.method+" "+rt.path, "/", "_")+"/"+p.name, func(t *testing.T) {
				var echo []string
				if rt.echo != nil {
					echo = rt.echo()
				}
				call := func(o object, hdr http.Header) answer {
					var body any
					if rt.body != nil {
						body = rt.body(o)
					}
					return f.do(t, p, rt.method, fmt.Sprintf(rt.path, o.ref), body, hdr, echo...)
				}
				roleOK := apiv1.RoleRank(p.role) >= apiv1.RoleRank(rt.min)
				mine := f.objects(rt.kind, p.org)
				if p != f.admin && rt.kind == "agent" {
					mine = append(mine, object{sharedHost, p.org})
				}
				for _, o := range mine {
					hdr := rt.hdr
					if rt.inHdr != nil {
						hdr = rt.inHdr
					}
					want := 403
					if roleOK {
						want = rt.in(p, o)
					}
					if a := call(o, hdr); a.status != want {
						t.Errorf("%s of %s (own site): HTTP %d, want %d: %s", o.ref, o.org, a.status, want, tail(a.body, 500))
					}
				}
				// What does not exist, and what is out of reach: the same answer.
				none := object{uuid.NewString(), ""}
				noneAnswer := call(none, rt.hdr)
				want := 404
				if !roleOK {
					want = 403
				}
				if noneAnswer.status != want {
					t.Errorf("unknown %s %s: HTTP %d, want %d: %s", rt.kind, none.ref, noneAnswer.status, want, noneAnswer.body)
				}
				if p == f.admin {
					return
				}
				for _, o := range f.others(rt.kind, p) {
					a := call(o, rt.hdr)
					if a.status != want {
						t.Errorf("%s of %q (another site): HTTP %d, want %d as for what does not exist: %s", o.ref, o.org, a.status, want, tail(a.body, 500))
						continue
					}
					if got, wantBody := normal(a, o.ref), normal(noneAnswer, none.ref); got != wantBody {
						t.Errorf("%s (another site) answers otherwise than an unknown %s:\n%s\nwant\n%s", o.ref, rt.kind, got, wantBody)
					}
				}
			})
		}
	}
}

// testSharedHostname: both organisations have an agent named kiosk-01.
// Each side's people reach their own by that name, as if the other did not
// exist; only the admin, who reaches both, is told it is ambiguous.
func (f *sitesFleet) testSharedHostname(t *testing.T) {
	for _, p := range f.scoped {
		var ag apiv1.Agent
		decodeInto(t, f.want(t, 200, p, "GET", "/v1/agents/"+sharedHost, nil), &ag)
		want := map[string]string{"Acme": f.acmeAgent.ID, "Globex": f.gxAgent.ID}[p.org]
		if ag.ID != want || ag.Site != map[string]string{"Acme": "Acme/HQ", "Globex": "Globex/Main"}[p.org] {
			t.Errorf("%s got agent %s in %s by hostname, want %s", p.name, ag.ID, ag.Site, want)
		}
	}
	body := f.want(t, 409, f.admin, "GET", "/v1/agents/"+sharedHost, nil)
	if !strings.Contains(body, f.acmeAgent.ID) || !strings.Contains(body, f.gxAgent.ID) {
		t.Errorf("the admin's ambiguous answer does not list both agents: %s", body)
	}
	for _, p := range []*principal{f.alice, f.vera, f.audrey} {
		other, none := f.call(t, p, "GET", "/v1/agents/globex-nas", nil), f.call(t, p, "GET", "/v1/agents/no-such-host", nil)
		if normal(other, "globex-nas") != normal(none, "no-such-host") || other.status != 404 {
			t.Errorf("%s: Globex's hostname answers %s, an unknown one %s", p.name, normal(other, "globex-nas"), normal(none, "no-such-host"))
		}
	}
}

func (f *sitesFleet) testLists(t *testing.T) {
	sorted := func(l ...string) []string { slices.Sort(l); return l }
	agents := map[string][]string{"Acme": {f.acmeAgent.ID}, "Globex": sorted(f.gxAgent.ID, f.nas.ID), "": sorted(f.acmeAgent.ID, f.gxAgent.ID, f.nas.ID)}
	kiosks := map[string][]string{"Acme": {f.acmeAgent.ID}, "Globex": {f.gxAgent.ID}, "": sorted(f.acmeAgent.ID, f.gxAgent.ID)}
	jobs := map[string][]string{"Acme": {f.jobAcme}, "Globex": {f.jobGX}, "": sorted(f.jobAcme, f.jobGX, f.jobBoth)}
	sessions := map[string][]string{"Acme": {f.sessAcme}, "Globex": {f.sessGX}, "": sorted(f.sessAcme, f.sessGX)}
	sites := map[string][]string{"Acme": {f.hq.ID}, "Globex": {f.gx.ID}, "": sorted(f.def.ID, f.hq.ID, f.lyon.ID, f.gx.ID)}
	for _, p := range append([]*principal{f.admin}, f.scoped...) {
		for _, c := range []struct {
			path  string
			field string
			want  []string
		}{
			{"/v1/agents", "id", agents[p.org]},
			{"/v1/agents?target=role%3Dkiosk", "id", kiosks[p.org]},
			{"/v1/jobs", "id", jobs[p.org]},
			{"/v1/sessions", "id", sessions[p.org]},
			{"/v1/sites", "id", sites[p.org]},
		} {
			got := sorted(jsonField(t, f.want(t, 200, p, "GET", c.path, nil), c.field)...)
			if !slices.Equal(got, c.want) {
				t.Errorf("GET %s as %s: %v, want %v", c.path, p.name, got, c.want)
			}
		}
	}
	// The site filter: one's own site, never another's (404 as for none).
	for _, p := range []*principal{f.alice, f.vera, f.audrey} {
		for _, ref := range []string{"Globex/Main", f.gx.ID, prefix(f.gx.ID), "Main", "Acme/Lyon"} {
			other := f.call(t, p, "GET", "/v1/agents?site="+url.QueryEscape(ref), nil)
			none := f.call(t, p, "GET", "/v1/agents?site=Initech%2FHQ", nil)
			if other.status != 404 || normal(other, ref) != normal(none, "Initech/HQ") {
				t.Errorf("%s: agents of site %s: %s; an unknown site: %s", p.name, ref, normal(other, ref), normal(none, "Initech/HQ"))
			}
		}
		if got := jsonField(t, f.want(t, 200, p, "GET", "/v1/agents?site=HQ", nil), "id"); !slices.Equal(got, agents["Acme"]) {
			t.Errorf("%s: agents of HQ: %v", p.name, got)
		}
	}
	// Sessions on another site's agent: none, as for an agent with none.
	for _, c := range []struct {
		p     *principal
		agent string
	}{{f.alice, f.gxAgent.ID}, {f.vera, f.gxAgent.ID}, {f.gustav, f.acmeAgent.ID}, {f.bot, f.acmeAgent.ID}} {
		if got := f.want(t, 200, c.p, "GET", "/v1/sessions?agent="+c.agent, nil); strings.TrimSpace(got) != "[]" {
			t.Errorf("%s: sessions on the other side's agent: %s", c.p.name, tail(got, 300))
		}
	}
	if got := sorted(jsonField(t, f.want(t, 200, f.gustav, "GET", "/v1/agents?site=Globex%2FMain", nil), "id")...); !slices.Equal(got, agents["Globex"]) {
		t.Errorf("gustav: agents of Globex/Main: %v", got)
	}
	if got := jsonField(t, f.want(t, 200, f.admin, "GET", "/v1/agents?site=Acme%2FHQ", nil), "id"); !slices.Equal(got, agents["Acme"]) {
		t.Errorf("admin: agents of Acme/HQ: %v", got)
	}
	// Each agent's runs: alice's job over "all" ran only on Acme's agent.
	runs := func(agent string) []string {
		return sorted(jsonField(t, f.want(t, 200, f.admin, "GET", "/v1/agents/"+agent+"/runs", nil), "job_id")...)
	}
	if got, want := runs(f.acmeAgent.ID), sorted(f.jobAcme, f.jobBoth); !slices.Equal(got, want) {
		t.Errorf("runs of Acme's agent: %v, want %v", got, want)
	}
	if got, want := runs(f.gxAgent.ID), sorted(f.jobGX, f.jobBoth); !slices.Equal(got, want) {
		t.Errorf("runs of Globex's agent: %v, want %v", got, want)
	}
	var s []apiv1.Site
	decodeInto(t, f.want(t, 200, f.gustav, "GET", "/v1/sites", nil), &s)
	if len(s) != 1 || s[0].FullName != "Globex/Main" || s[0].Agents != 2 {
		t.Errorf("gustav's sites: %+v", s)
	}
}

// testOpenJobs: jobs still running are answered from the dispatcher's
// memory, another path than ended ones; the same rules hold there.
func (f *sitesFleet) testOpenJobs(t *testing.T) {
	start := func(p *principal, target string) string {
		var j apiv1.Job
		decodeInto(t, f.want(t, 201, p, "POST", "/v1/jobs", apiv1.JobCreate{Plugin: "testplugin", Target: target,
			Params: map[string]string{"sleep": "2m"}}), &j)
		return j.ID
	}
	gx, both := start(f.gustav, "id="+f.gxAgent.ID), start(f.admin, "role=kiosk")
	defer func() {
		for _, id := range []string{gx, both} {
			f.want(t, 200, f.admin, "POST", "/v1/jobs/"+id+"/cancel", nil)
			if j := f.waitJob(t, id); j.State != "cancelled" {
				t.Errorf("job %s ended %s after its cancel", id, j.State)
			}
		}
	}()
	for _, p := range f.scoped {
		p := &principal{name: p.name, role: p.role, token: p.token, org: p.org, avoid: append(slices.Clone(p.avoid), both)}
		if p.org == "Acme" {
			p.avoid = append(p.avoid, gx)
		}
		for _, path := range []string{"/v1/jobs/%s", "/v1/jobs/%s?results=false", "/v1/jobs/%s/export", "/v1/jobs/%s/events"} {
			for _, id := range []string{gx, both} {
				want := 404
				if id == gx && p.org == "Globex" {
					if strings.HasSuffix(path, "events") {
						continue // streams until the job ends
					}
					want = 200
				}
				if a := f.call(t, p, "GET", fmt.Sprintf(path, id), nil); a.status != want {
					t.Errorf("GET %s as %s: HTTP %d, want %d: %s", fmt.Sprintf(path, id), p.name, a.status, want, tail(a.body, 300))
				}
			}
		}
		if p.role == "technician" {
			f.want(t, 404, p, "POST", "/v1/jobs/"+both+"/cancel", nil)
		}
		if got := jsonField(t, f.want(t, 200, p, "GET", "/v1/jobs", nil), "id"); slices.Contains(got, both) || (p.org == "Acme") == slices.Contains(got, gx) {
			t.Errorf("%s lists jobs %v (Globex's open job %s, the job over both %s)", p.name, got, gx, both)
		}
	}
	f.want(t, 403, f.bot, "POST", "/v1/jobs/"+gx+"/cancel", nil)
}

// jobCount is how many jobs there are and how many job.create records.
func (f *sitesFleet) jobCount(t *testing.T) (int, int) {
	t.Helper()
	jobs := jsonField(t, f.want(t, 200, f.admin, "GET", "/v1/jobs", nil), "id")
	recs := jsonField(t, f.want(t, 200, f.admin, "GET", "/v1/audit?action=job.create&limit=1000", nil), "seq")
	return len(jobs), len(recs)
}

func (f *sitesFleet) testSelectors(t *testing.T) {
	jobs, recs := f.jobCount(t)
	refuse := func(p *principal, plugin, target string, status int, want string) {
		t.Helper()
		var params map[string]string
		if plugin == "testplugin" {
			params = map[string]string{"mode": "echo", "text": "x"}
		}
		a := f.call(t, p, "POST", "/v1/jobs", apiv1.JobCreate{Plugin: plugin, Target: target, Params: params}, target)
		if a.status != status || !strings.Contains(a.body, want) {
			t.Errorf("%s runs %s on %q: HTTP %d %s; want %d %q", p.name, plugin, target, a.status, tail(a.body, 500), status, want)
		}
	}
	for _, p := range []*principal{f.alice} {
		for _, target := range []string{"id=" + f.gxAgent.ID, "id=" + f.nas.ID, "hostname=globex-nas", "hostname=globex-*",
			"customer=globex", "id in (" + f.gxAgent.ID + "," + f.nas.ID + ")", "customer=globex,role=kiosk"} {
			refuse(p, "testplugin", target, 400, "no agent matches")
		}
		// A plugin published to Globex only is not in Acme's catalog.
		refuse(p, "sysinfo", "all", 404, "not in the catalog")
		refuse(p, "sysinfo", "id="+f.gxAgent.ID, 404, "not in the catalog")
	}
	for _, p := range []*principal{f.gustav, f.bot} {
		for _, target := range []string{"id=" + f.acmeAgent.ID, "customer=acme", "id in (" + f.acmeAgent.ID + ")"} {
			refuse(p, "testplugin", target, 400, "no agent matches")
		}
		refuse(p, "sysinfo", "id="+f.acmeAgent.ID, 400, "no agent matches")
	}
	// Viewers and auditors run nothing, whatever the target.
	for _, p := range []*principal{f.vera, f.audrey} {
		refuse(p, "testplugin", "all", 403, "technician role")
	}
	// Code runs only where it is published, even for the admin.
	refuse(f.admin, "sysinfo", "id="+f.acmeAgent.ID, 400, "no agent matches")
	if j, r := f.jobCount(t); j != jobs || r != recs {
		t.Errorf("refused jobs left %d jobs and %d job.create records, want %d and %d", j, r, jobs, recs)
	}
}

func (f *sitesFleet) testCatalog(t *testing.T) {
	names := func(p *principal, kind string) map[string][]string {
		var arts []apiv1.Artifact
		decodeInto(t, f.want(t, 200, p, "GET", "/v1/"+kind, nil), &arts)
		out := map[string][]string{}
		for _, a := range arts {
			out[a.Name] = a.Sites
		}
		return out
	}
	for _, p := range append([]*principal{f.admin}, f.scoped...) {
		plugins, scripts := names(p, "plugins"), names(p, "scripts")
		_, sysinfo := plugins["sysinfo"]
		_, script := scripts["globex-inventory"]
		if sysinfo != (p.org != "Acme") || script != (p.org != "Acme") || len(plugins["testplugin"]) == 0 {
			t.Errorf("%s's catalog: plugins %v, scripts %v", p.name, plugins, scripts)
		}
		// Where an item is published is shown only as far as the caller reaches.
		want := map[string][]string{"": {"Acme/HQ", "Globex/Main"}, "Acme": {"Acme/HQ"}, "Globex": {"Globex/Main"}}[p.org]
		if !slices.Equal(plugins["testplugin"], want) {
			t.Errorf("%s sees testplugin published to %v, want %v", p.name, plugins["testplugin"], want)
		}
		var tp apiv1.Artifact
		decodeInto(t, f.want(t, 200, p, "GET", "/v1/plugins/"+f.testplugin.SHA256, nil), &tp)
		if !slices.Equal(tp.Sites, want) {
			t.Errorf("%s: testplugin shown published to %v, want %v", p.name, tp.Sites, want)
		}
		for _, c := range []struct{ kind, sha string }{{"plugins", f.sysinfo.SHA256}, {"scripts", f.script.SHA256}} {
			a := f.call(t, p, "GET", "/v1/"+c.kind+"/"+c.sha, nil)
			none := f.call(t, p, "GET", "/v1/"+c.kind+"/"+strings.Repeat("0", 64), nil)
			switch {
			case p.org == "Acme" && (a.status != 404 || normal(a, c.sha) != normal(none, strings.Repeat("0", 64))):
				t.Errorf("%s: Globex's %s %s: %s; an unknown one: %s", p.name, c.kind, c.sha, normal(a, c.sha), normal(none, strings.Repeat("0", 64)))
			case p.org != "Acme" && a.status != 200:
				t.Errorf("%s: Globex's %s %s: HTTP %d %s", p.name, c.kind, c.sha, a.status, a.body)
			}
		}
	}
	// Agents download only what is published to their site, with their
	// own certificate (mutual TLS).
	agentGet := func(a *Agent, path string) int {
		cert, err := tls.LoadX509KeyPair(filepath.Join(a.Dir, "agent.crt"), filepath.Join(a.Dir, "agent.key"))
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}}}
		defer hc.CloseIdleConnections()
		res, err := hc.Get(f.r.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, c := range []struct {
		sha          string
		acme, globex int
	}{{f.sysinfo.SHA256, 404, 200}, {f.script.SHA256, 404, 200}, {f.testplugin.SHA256, 200, 200}} {
		for _, suffix := range []string{"", "/sig"} {
			path := "/v1/agent/artifacts/" + c.sha + suffix
			if got := agentGet(f.acmeAgent, path); got != c.acme {
				t.Errorf("Acme's agent: GET %s: HTTP %d, want %d", path, got, c.acme)
			}
			if got := agentGet(f.gxAgent, path); got != c.globex {
				t.Errorf("Globex's agent: GET %s: HTTP %d, want %d", path, got, c.globex)
			}
		}
	}
}

func (f *sitesFleet) testRecording(t *testing.T) {
	for _, c := range []struct {
		p      *principal
		sess   string
		status int
	}{
		{f.alice, f.sessAcme, 200}, {f.audrey, f.sessAcme, 200}, {f.admin, f.sessAcme, 200},
		{f.vera, f.sessAcme, 403}, {f.gustav, f.sessAcme, 404}, {f.bot, f.sessAcme, 404},
		{f.gustav, f.sessGX, 200}, {f.bot, f.sessGX, 403}, {f.alice, f.sessGX, 404}, {f.audrey, f.sessGX, 404},
	} {
		a := f.call(t, c.p, "GET", "/v1/sessions/"+c.sess+"/recording", nil)
		if a.status != c.status {
			t.Errorf("%s reads the recording of %s: HTTP %d, want %d: %s", c.p.name, c.sess, a.status, c.status, tail(a.body, 300))
		}
		if a.status == 200 && c.sess == f.sessAcme && a.body != f.recording {
			t.Errorf("%s got another recording (%d bytes, want %d)", c.p.name, len(a.body), len(f.recording))
		}
		if c.status == 403 && !strings.Contains(a.body, "readable by its technician") {
			t.Errorf("%s's refusal does not say who may read it: %s", c.p.name, a.body)
		}
	}
	// Every read is in the audit of the session's site.
	var recs []struct {
		Actor  string            `json:"actor"`
		Detail map[string]string `json:"detail"`
	}
	decodeInto(t, f.want(t, 200, f.admin, "GET", "/v1/audit?action=session.recording.read&site=Acme%2FHQ", nil), &recs)
	readers := map[string]bool{}
	for _, r := range recs {
		readers[strings.Fields(r.Actor)[0]] = true
	}
	if !readers["alice.acme"] || !readers["audrey.acme"] || len(readers) != 3 {
		t.Errorf("session.recording.read records in Acme/HQ's audit are by %v, want alice.acme, audrey.acme and the admin", readers)
	}
}

func (f *sitesFleet) testAudit(t *testing.T) {
	type rec struct {
		Action string            `json:"action"`
		Target string            `json:"target"`
		Detail map[string]string `json:"detail"`
	}
	siteID := map[string]string{"Acme": f.hq.ID, "Globex": f.gx.ID}
	for _, p := range f.scoped {
		var recs []rec
		decodeInto(t, f.want(t, 200, p, "GET", "/v1/audit?limit=1000", nil), &recs)
		if len(recs) == 0 {
			t.Errorf("%s sees no audit record of their site", p.name)
		}
		for _, r := range recs {
			if r.Detail["site"] != siteID[p.org] {
				t.Errorf("%s sees an audit record of site %q: %+v", p.name, r.Detail["site"], r)
			}
		}
		export := f.want(t, 200, p, "GET", "/v1/audit/export?format=jsonl", nil)
		if n := strings.Count(export, "\n"); n != len(recs) {
			t.Errorf("%s's export has %d records, the list %d", p.name, n, len(recs))
		}
		f.want(t, 200, p, "GET", "/v1/audit/export?format=csv", nil)
		if body := f.want(t, 403, p, "GET", "/v1/audit/head", nil); !strings.Contains(body, "needs every record") {
			t.Errorf("%s: audit head refused with %s", p.name, body)
		}
		other := map[string]string{"Acme": "Globex/Main", "Globex": "Acme/HQ"}[p.org]
		for _, path := range []string{"/v1/audit?site=", "/v1/audit/export?format=jsonl&site="} {
			a, none := f.call(t, p, "GET", path+url.QueryEscape(other), nil), f.call(t, p, "GET", path+"Initech%2FHQ", nil)
			if a.status != 404 || normal(a, other) != normal(none, "Initech/HQ") {
				t.Errorf("%s: %s%s: %s; an unknown site: %s", p.name, path, other, normal(a, other), normal(none, "Initech/HQ"))
			}
		}
		// Asking about the other side's agent by ID finds nothing.
		otherAgent := map[string]string{"Acme": f.gxAgent.ID, "Globex": f.acmeAgent.ID}[p.org]
		if got := f.want(t, 200, p, "GET", "/v1/audit?agent="+otherAgent, nil); strings.TrimSpace(got) != "[]" {
			t.Errorf("%s: audit records about the other side's agent: %s", p.name, tail(got, 500))
		}
	}
	// The admin sees both sides and the relay-wide records, and verifies.
	f.want(t, 200, f.admin, "GET", "/v1/audit/head", nil)
	for org, id := range siteID {
		var recs []rec
		decodeInto(t, f.want(t, 200, f.admin, "GET", "/v1/audit?limit=1000&site="+url.QueryEscape(map[string]string{"Acme": "Acme/HQ", "Globex": "Globex/Main"}[org]), nil), &recs)
		own := map[string]string{"Acme": f.jobAcme, "Globex": f.jobGX}[org]
		var jobs []string
		for _, r := range recs {
			if r.Detail["site"] != id {
				t.Errorf("admin, site filter %s: record of site %q: %+v", org, r.Detail["site"], r)
			}
			if r.Action == "job.create" {
				jobs = append(jobs, strings.TrimPrefix(r.Target, "job "))
			}
		}
		if !slices.Contains(jobs, own) || slices.Contains(jobs, f.jobBoth) || slices.Contains(jobs, f.jobAcme) && slices.Contains(jobs, f.jobGX) {
			t.Errorf("admin: job.create records in %s's audit are of %v, want its own jobs only", org, jobs)
		}
	}
}

func (f *sitesFleet) testAdminRoutes(t *testing.T) {
	var users []apiv1.User
	decodeInto(t, f.want(t, 200, f.admin, "GET", "/v1/users", nil), &users)
	uid := map[string]string{}
	for _, u := range users {
		uid[u.Name] = u.ID
	}
	for _, p := range f.scoped {
		mine := map[string]string{"Acme": f.acmeAgent.ID, "Globex": f.gxAgent.ID}[p.org]
		self := uid[p.name]
		if self == "" {
			self = uid["gustav.globex"]
		}
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/v1/organisations", nil},
			{"POST", "/v1/organisations", apiv1.OrganisationRequest{Name: "Initech"}},
			{"POST", "/v1/sites", apiv1.SiteRequest{Organisation: p.org, Name: "Paris"}},
			{"DELETE", "/v1/sites/" + f.lyon.ID, nil},
			{"POST", "/v1/agents/" + mine + "/site", apiv1.AgentSiteRequest{Site: "default/default"}},
			{"POST", "/v1/agents/" + mine + "/revoke", nil},
			{"GET", "/v1/users", nil},
			{"POST", "/v1/users", apiv1.UserRequest{Name: "mallory", Role: "admin", Sites: []string{"all"}}},
			{"GET", "/v1/users/" + self, nil},
			{"POST", "/v1/users/" + self + "/sites", apiv1.UserSitesRequest{Sites: []string{"all"}}},
			{"POST", "/v1/users/" + self + "/disable", nil},
			{"POST", "/v1/users/" + self + "/enable", nil},
			{"POST", "/v1/users/" + self + "/reset", apiv1.UserResetRequest{}},
			{"DELETE", "/v1/users/" + self, nil},
			{"GET", "/v1/enroll-tokens", nil},
			{"POST", "/v1/enroll-tokens", apiv1.EnrollTokenRequest{Site: p.org}},
			{"DELETE", "/v1/enroll-tokens/" + uuid.NewString(), nil},
			{"GET", "/v1/api-tokens", nil},
			{"POST", "/v1/api-tokens", apiv1.APITokenRequest{Role: "viewer", Name: "x", Sites: []string{"all"}}},
			{"DELETE", "/v1/api-tokens/" + uuid.NewString(), nil},
			{"PUT", "/v1/settings/require-totp", apiv1.RequireTOTPRequest{Enabled: true}},
			{"POST", "/v1/plugins", nil},
			{"POST", "/v1/scripts", nil},
		} {
			if a := f.call(t, p, c.method, c.path, c.body); a.status != 403 {
				t.Errorf("%s %s as %s (%s): HTTP %d, want 403: %s", c.method, c.path, p.name, p.role, a.status, tail(a.body, 300))
			}
		}
	}
	// The admin: a site in use or the default one stays; an empty one goes.
	f.want(t, 409, f.admin, "DELETE", "/v1/sites/"+f.gx.ID, nil)
	f.want(t, 409, f.admin, "DELETE", "/v1/sites/"+f.def.ID, nil)
	f.want(t, 400, f.admin, "POST", "/v1/users/"+uid["vera.acme"]+"/sites", apiv1.UserSitesRequest{Sites: []string{}})
	f.want(t, 204, f.admin, "DELETE", "/v1/sites/Acme%2FLyon", nil)
	f.want(t, 404, f.admin, "DELETE", "/v1/sites/"+f.lyon.ID, nil)
	var s []apiv1.Site
	decodeInto(t, f.want(t, 200, f.admin, "GET", "/v1/sites", nil), &s)
	if len(s) != 3 {
		t.Errorf("after deleting Acme/Lyon the admin lists %d sites: %+v", len(s), s)
	}
}

func (f *sitesFleet) testMove(t *testing.T) {
	var ag apiv1.Agent
	decodeInto(t, f.want(t, 200, f.admin, "POST", "/v1/agents/"+f.gxAgent.ID+"/site", apiv1.AgentSiteRequest{Site: "Acme/HQ"}), &ag)
	if ag.Site != "Acme/HQ" || ag.SiteID != f.hq.ID {
		t.Fatalf("moved agent answers site %q (%s)", ag.Site, ag.SiteID)
	}
	// The agent is Acme's now, its past (sessions, jobs) stays Globex's:
	// Acme's people may see that it came from Globex, not what was done there.
	acme := &principal{name: f.alice.name, role: f.alice.role, token: f.alice.token, org: "Acme",
		avoid: []string{f.gx.ID, f.nas.ID, f.jobGX, f.jobBoth, f.sessGX, f.sysinfo.SHA256, f.script.SHA256}}
	globex := &principal{name: f.gustav.name, role: f.gustav.role, token: f.gustav.token, org: "Globex",
		avoid: []string{f.hq.ID, f.acmeAgent.ID, f.jobAcme, f.jobBoth, f.sessAcme}}
	decodeInto(t, f.want(t, 200, acme, "GET", "/v1/agents/"+f.gxAgent.ID, nil), &ag)
	if ag.Site != "Acme/HQ" || !ag.Online {
		t.Errorf("alice sees the moved agent in %q, online %v", ag.Site, ag.Online)
	}
	f.want(t, 404, globex, "GET", "/v1/agents/"+f.gxAgent.ID, nil)
	if body := f.want(t, 409, acme, "GET", "/v1/agents/"+sharedHost, nil); !strings.Contains(body, f.gxAgent.ID) {
		t.Errorf("alice's two kiosk-01 are not both named: %s", body)
	}
	f.want(t, 200, globex, "GET", "/v1/agents/globex-nas", nil)
	if got := jsonField(t, f.want(t, 200, globex, "GET", "/v1/agents", nil), "id"); !slices.Equal(got, []string{f.nas.ID}) {
		t.Errorf("gustav's agents after the move: %v", got)
	}
	if got := jsonField(t, f.want(t, 200, acme, "GET", "/v1/sessions", nil), "id"); !slices.Equal(got, []string{f.sessAcme}) {
		t.Errorf("alice's sessions after the move: %v", got)
	}
	if got := jsonField(t, f.want(t, 200, globex, "GET", "/v1/sessions", nil), "id"); !slices.Equal(got, []string{f.sessGX}) {
		t.Errorf("gustav's sessions after the move: %v", got)
	}
	f.want(t, 200, globex, "GET", "/v1/sessions/"+f.sessGX+"/recording", nil)
	// alice runs on it at once; the job is Acme's.
	var j apiv1.Job
	decodeInto(t, f.want(t, 201, acme, "POST", "/v1/jobs", apiv1.JobCreate{Plugin: "testplugin", Target: "id=" + f.gxAgent.ID,
		Params: map[string]string{"mode": "echo", "text": "moved"}}), &j)
	if j.Total != 1 || !slices.Equal(j.Sites, []string{"Acme/HQ"}) {
		t.Errorf("alice's job on the moved agent: %d agents in %v", j.Total, j.Sites)
	}
	if got := f.waitJob(t, j.ID); got.State != "done" {
		t.Errorf("alice's job on the moved agent ended %s: %+v", got.State, got.Results)
	}
	f.want(t, 404, globex, "GET", "/v1/jobs/"+j.ID, nil)

	// The move is in both sites' audit, and each side sees its own record.
	type rec struct {
		Target string            `json:"target"`
		Detail map[string]string `json:"detail"`
	}
	for _, c := range []struct {
		p    *principal
		path string
		site string
	}{
		{f.admin, "/v1/audit?action=agent.move&site=Acme%2FHQ", f.hq.ID},
		{f.admin, "/v1/audit?action=agent.move&site=Globex%2FMain", f.gx.ID},
		{acme, "/v1/audit?action=agent.move", f.hq.ID},
		{globex, "/v1/audit?action=agent.move", f.gx.ID},
	} {
		var recs []rec
		decodeInto(t, f.want(t, 200, c.p, "GET", c.path, nil), &recs)
		if len(recs) != 1 || recs[0].Target != f.gxAgent.ID || recs[0].Detail["site"] != c.site ||
			recs[0].Detail["from"] != "Globex/Main" || recs[0].Detail["to"] != "Acme/HQ" {
			t.Errorf("%s as %s: %+v", c.path, c.p.name, recs)
		}
	}
	var s []apiv1.Site
	decodeInto(t, f.want(t, 200, f.admin, "GET", "/v1/sites", nil), &s)
	for _, site := range s {
		if want := map[string]int{"Acme/HQ": 2, "Globex/Main": 1, "default/default": 0}[site.FullName]; site.Agents != want {
			t.Errorf("site %s counts %d agents, want %d", site.FullName, site.Agents, want)
		}
	}
}
