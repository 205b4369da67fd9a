package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// enrollFixture enrolls agents with the given IDs and hostnames straight
// into the real relay's store.
func enrollFixture(t *testing.T, st *store.Store, agents map[string]string) {
	t.Helper()
	ctx := context.Background()
	tok := store.EnrollToken{ID: store.NewID(), Hash: "fixture", CreatedAt: fixedNow, ExpiresAt: fixedNow.Add(time.Hour)}
	if err := st.CreateEnrollToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	for id, host := range agents {
		if _, _, err := st.EnrollAgent(ctx, "fixture", store.Agent{ID: id, Hostname: host, OS: "linux", Arch: "amd64"}, fixedNow); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	agentA = "0190c6a8-0000-7000-8000-00000000000a"
	agentB = "0190c6a8-1111-7000-8000-00000000000b"
	agentC = "0190c6b0-0000-7000-8000-00000000000c"
)

func TestAgentsAreNamedAsTheTableShowsThem(t *testing.T) {
	st := realRelay(t, apiv1.RoleAdmin)
	enrollFixture(t, st, map[string]string{agentA: "web-01", agentB: "kiosk", agentC: "KIOSK"})

	for ref, want := range map[string]string{"0190c6a8-0": agentA, "0190c6b": agentC, "WEB-01": agentA, agentB: agentB} {
		r := patchbay(t, "", "agents", "show", ref, "-o", "json")
		var ag apiv1.Agent
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ag) != nil || ag.ID != want {
			t.Errorf("agents show %s: %+v, want %s", ref, r, want)
		}
	}
	// Ambiguous: the candidates, and what to do.
	r := patchbay(t, "", "agents", "show", "0190c6a8")
	if r.code != 1 || !strings.Contains(r.stderr, `"0190c6a8" names 2 agents: `+agentA+" (web-01), "+agentB+" (kiosk): give more of the ID") {
		t.Errorf("ambiguous prefix: %+v", r)
	}
	r = patchbay(t, "", "agents", "revoke", "kiosk")
	if r.code != 1 || !strings.Contains(r.stderr, `"kiosk" names 2 agents`) || !strings.Contains(r.stderr, "use an ID (or a unique prefix of one)") {
		t.Errorf("shared hostname: %+v", r)
	}
	// Unknown: what was looked for and where the names are.
	r = patchbay(t, "", "agents", "show", "web-99")
	if r.code != 1 || !strings.Contains(r.stderr, `no agent with ID, ID prefix or hostname "web-99": patchbay agents list shows them`) {
		t.Errorf("unknown agent: %+v", r)
	}
	if ag, _ := st.GetAgent(context.Background(), agentB); !ag.RevokedAt.IsZero() {
		t.Fatal("a refused revoke changed the agent")
	}

	// Revoked by a prefix, then shown as revoked in the list (table and JSON).
	if r := patchbay(t, "", "agents", "revoke", "0190c6a8-1"); r.code != 0 || !strings.Contains(r.stdout, "Revoked agent "+agentB) {
		t.Fatalf("revoke by prefix: %+v", r)
	}
	r = patchbay(t, "", "agents", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "STATE") || !hasLine(r.stdout, agentB, "revoked") || !hasLine(r.stdout, agentA, "offline") {
		t.Errorf("agents list:\n%s", r.stdout)
	}
	var list []apiv1.Agent
	r = patchbay(t, "", "agents", "list", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 3 {
		t.Fatalf("agents list -o json: %v %s", err, r.stdout)
	}
	for _, ag := range list {
		if ag.Revoked != (ag.ID == agentB) {
			t.Errorf("agent %s revoked=%v", ag.ID, ag.Revoked)
		}
	}
}

// hasLine reports whether some line of s holds every one of parts.
func hasLine(s string, parts ...string) bool {
	for _, line := range strings.Split(s, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// storedJob stores a finished job on agentA and agentB with their results.
func storedJob(t *testing.T, st *store.Store, id string, results ...store.Run) store.Job {
	t.Helper()
	ctx := context.Background()
	j := store.Job{ID: id, Plugin: "sysinfo", PluginVersion: "1.0.0", Target: "all", MaxFailures: -1, MaxFailuresBP: -1,
		Timeout: time.Minute, State: store.JobRunning, CreatedAt: fixedNow, ExpiresAt: fixedNow.Add(time.Hour), Total: len(results)}
	runs := make([]store.Run, len(results))
	var rs []store.Result
	for i, res := range results {
		runs[i] = store.Run{ID: store.NewID(), JobID: id, Seq: i, AgentID: res.AgentID, Hostname: res.Hostname, State: store.RunPending}
		res.ID, res.StartedAt, res.EndedAt = runs[i].ID, fixedNow, fixedNow.Add(1500*time.Millisecond)
		rs = append(rs, store.Result{AgentID: res.AgentID, Run: res})
	}
	if err := st.CreateJob(ctx, j, runs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.SaveReports(ctx, nil, rs); err != nil {
		t.Fatal(err)
	}
	if err := st.EndJob(ctx, id, store.JobDone, fixedNow.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	return j
}

func TestJobsShowPrintsOutputAndDetailsAsText(t *testing.T) {
	st := realRelay(t, apiv1.RoleAdmin)
	enrollFixture(t, st, map[string]string{agentA: "web-01", agentB: "kiosk"})
	const job1, job2 = "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b", "0193a1b2-8c4d-7e8f-9a0b-1c2d3e4f5a6c"
	storedJob(t, st, job1,
		store.Run{AgentID: agentA, Hostname: "web-01", State: store.RunSucceeded, Summary: "load 0.1",
			Details: `{"load":[0.1,0.2],"disk":{"/":"40%"}}`, Output: "line one\n\tline two\x1b[2J\r\n"},
		store.Run{AgentID: agentB, Hostname: "kiosk", State: store.RunSucceeded, Summary: "patched", RebootRequired: true,
			Details: "updated 3 packages\nrestart: tonight at 22:00, chosen by bob"})
	storedJob(t, st, job2, store.Run{AgentID: agentA, Hostname: "web-01", State: store.RunSucceeded, Summary: "ok"})

	r := patchbay(t, "", "jobs", "show", "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b")
	want := `Job 0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b: sysinfo 1.0.0 on "all", done
HOSTNAME  AGENT                                 STATE      DURATION  SUMMARY / ERROR
kiosk     0190c6a8-1111-7000-8000-00000000000b  succeeded  1.5s      patched (restart: tonight at 22:00, chosen by bob)
web-01    0190c6a8-0000-7000-8000-00000000000a  succeeded  1.5s      load 0.1

kiosk (0190c6a8-1111-7000-8000-00000000000b): succeeded in 1.5s
  summary: patched
  details: updated 3 packages
  restart: restart: tonight at 22:00, chosen by bob

web-01 (0190c6a8-0000-7000-8000-00000000000a): succeeded in 1.5s
  summary: load 0.1
  details:
    {
      "load": [
        0.1,
        0.2
      ],
      "disk": {
        "/": "40%"
      }
    }
  output:
    line one
        line two\x1b[2J
`
	if r.code != 0 || r.stdout != want {
		t.Errorf("jobs show: exit %d, stderr %q\n--- got\n%s\n--- want\n%s", r.code, r.stderr, r.stdout, want)
	}
	if r := patchbay(t, "", "jobs", "show", job1[:20], "--summary"); r.code != 0 || strings.Contains(r.stdout, "output:") || !strings.Contains(r.stdout, "load 0.1") {
		t.Errorf("jobs show PREFIX --summary: %+v", r)
	}

	// JSON: details are an object.
	r = patchbay(t, "", "jobs", "show", job1[:30], "-o", "json")
	var raw struct {
		Results []map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw.Results) != 2 {
		t.Fatalf("jobs show -o json: %v\n%s", err, r.stdout)
	}
	details := map[string]string{}
	for _, res := range raw.Results {
		var agent string
		json.Unmarshal(res["agent_id"], &agent)
		var b bytes.Buffer
		json.Compact(&b, res["details"])
		details[agent] = b.String()
	}
	if got := details[agentA]; got != `{"data":{"load":[0.1,0.2],"disk":{"/":"40%"}}}` {
		t.Errorf("JSON details of %s = %s", agentA, got)
	}
	if got := details[agentB]; got != `{"text":"updated 3 packages","restart":"restart: tonight at 22:00, chosen by bob"}` {
		t.Errorf("JSON details of %s = %s", agentB, got)
	}

	// A prefix of both jobs: the candidates; an unknown one: where to look.
	r = patchbay(t, "", "jobs", "cancel", "0193a1b2")
	if r.code != 1 || !strings.Contains(r.stderr, `"0193a1b2" names 2 jobs: `+job1+" (sysinfo), "+job2+" (sysinfo): give more of the ID") {
		t.Errorf("ambiguous job: %+v", r)
	}
	r = patchbay(t, "", "jobs", "export", "0000")
	if r.code != 1 || !strings.Contains(r.stderr, `no job with ID or ID prefix "0000": patchbay jobs list shows them`) {
		t.Errorf("unknown job: %+v", r)
	}
	r = patchbay(t, "", "jobs", "export", job2[:34], "-o", "csv")
	if r.code != 0 || !strings.Contains(r.stdout, job2) && !strings.Contains(r.stdout, agentA) {
		t.Errorf("export by prefix: %+v", r)
	}
}

func TestRelayDetailsStringStillReads(t *testing.T) {
	var res apiv1.RunResult
	if err := json.Unmarshal([]byte(`{"details":"{\"a\":1}\nrestart pending: policy never"}`), &res); err != nil {
		t.Fatal(err)
	}
	if res.Details == nil || string(res.Details.Data) != `{"a":1}` || res.Details.Restart != "restart pending: policy never" {
		t.Errorf("details from an older relay = %+v", res.Details)
	}
}

func TestVersionCommand(t *testing.T) {
	realRelay(t, apiv1.RoleViewer)
	r := patchbay(t, "", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "patchbay dev") || !strings.Contains(r.stdout, "\nrelay https://127.0.0.1:") {
		t.Errorf("version: %+v", r)
	}
	var v versionInfo
	r = patchbay(t, "", "version", "-o", "json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Relay == nil || !strings.HasPrefix(v.Version, "dev") {
		t.Errorf("version -o json: %+v", r)
	}
	t.Setenv("PATCHBAY_CONFIG", t.TempDir()+"/none.json")
	r = patchbay(t, "", "version")
	if r.code != 0 || strings.Contains(r.stdout, "relay") || r.stderr != "" {
		t.Errorf("version, not logged in: %+v", r)
	}
}

func TestCatalogShowTakesNames(t *testing.T) {
	st := realRelay(t, apiv1.RoleViewer)
	var shas = map[string]string{}
	for _, f := range []struct{ kind, name, version, goos, goarch string }{
		{store.KindPlugin, "cacheclear", "1.9.0", "linux", "amd64"},
		{store.KindPlugin, "cacheclear", "1.10.0", "linux", "amd64"},
		{store.KindPlugin, "cacheclear", "1.10.0", "windows", "arm64"},
		{store.KindScript, "flush-dns", "1.0.0", "", ""},
		{store.KindScript, "flush-dns", "1.1.0", "", ""},
	} {
		a, content := fixtureArtifact(f.kind, f.name, f.version, f.goos, f.goarch, 0)
		if _, err := st.PutArtifact(context.Background(), a, content); err != nil {
			t.Fatal(err)
		}
		shas[f.name+"@"+f.version+"/"+f.goos] = a.SHA256
	}
	show := func(args ...string) (apiv1.Artifact, result) {
		t.Helper()
		r := patchbay(t, "", append(args, "-o", "json")...)
		var art apiv1.Artifact
		if r.code == 0 {
			if err := json.Unmarshal([]byte(r.stdout), &art); err != nil {
				t.Fatalf("%v: %v", args, err)
			}
		}
		return art, r
	}
	if art, r := show("scripts", "show", "flush-dns"); art.Version != "1.1.0" {
		t.Errorf("scripts show NAME: newest wanted: %+v", r)
	}
	if art, r := show("scripts", "show", "flush-dns@1.0.0"); art.Version != "1.0.0" {
		t.Errorf("scripts show NAME@VERSION: %+v", r)
	}
	if art, r := show("plugins", "show", "cacheclear@1.9.0"); art.SHA256 != shas["cacheclear@1.9.0/linux"] {
		t.Errorf("plugins show NAME@VERSION: %+v", r)
	}
	win := shas["cacheclear@1.10.0/windows"]
	if art, r := show("plugins", "show", win[:12]); art.SHA256 != win {
		t.Errorf("plugins show SHA256-PREFIX: %+v", r)
	}
	_, r := show("plugins", "show", "cacheclear")
	if r.code != 1 || !strings.Contains(r.stderr, "patchbay: find plugin cacheclear: cacheclear 1.10.0 has 2 builds: cacheclear 1.10.0 linux/amd64 "+
		shas["cacheclear@1.10.0/linux"][:12]+", cacheclear 1.10.0 windows/arm64 "+win[:12]+": name one by its SHA-256 prefix") {
		t.Errorf("several builds: %+v", r)
	}
	_, r = show("plugins", "show", "cacheclear@2.0.0")
	if r.code != 1 || !strings.Contains(r.stderr, "no version 2.0.0 in the catalog; it has 1.10.0, 1.9.0") {
		t.Errorf("unknown version: %+v", r)
	}
	_, r = show("scripts", "show", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, "find script nope: no script with that name, name@version or SHA-256 prefix: patchbay scripts list shows them") {
		t.Errorf("unknown script: %+v", r)
	}
}
