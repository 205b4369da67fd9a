package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/internal/receipt"
)

// consentScript needs the user's consent before its fix; each run that is
// allowed to fix appends a line to the file named by its parameter.
const consentScript = `#!/bin/sh
# patchbay:begin
# name: consent-fix
# version: 1.0.0
# description: Appends a line to a file (asks the user first)
# os: linux, darwin
# shell: sh
# needs_consent: true
# param: marker string -- the file to append to
# patchbay:end
echo fixed >> "$PATCHBAY_PARAM_MARKER"
echo "marker written"
`

// startWith runs the agent with extra flags for patchbay-agent run.
func (a *Agent) startWith(args ...string) *Agent {
	a.proc = startProc(a.t, "agent "+a.ID, nil, append([]string{bin("patchbay-agent"), "run", "--data", a.Dir,
		"--log-level", "debug", "--log-format", "json"}, args...)...)
	return a
}

// consentProgram writes an exec consent backend: it appends each request
// it is given to asked, then approves as "alice" or denies as "bob" with
// the message "denied by the user".
func consentProgram(t *testing.T, approve bool, asked string) string {
	t.Helper()
	answer := "echo by=bob\necho 'denied by the user' >&2\nexit 1"
	if approve {
		answer = "echo by=alice\nexit 0"
	}
	p := filepath.Join(t.TempDir(), "ask.sh")
	if err := os.WriteFile(p, fmt.Appendf(nil, "#!/bin/sh\ncat >> %q\necho >> %q\n%s\n", asked, asked, answer), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o755); err != nil { // the backend refuses a program others may write
		t.Fatal(err)
	}
	return p
}

// helperBackendReady reports whether the agent has the helper consent
// backend (a helper in each user's session) and its when_no_user policy.
func helperBackendReady() bool {
	_, err := consent.ParseBackend("helper")
	return err == nil
}

// A needs_consent script in a job of three agents: the person at the first
// approves, at the second denies, and nobody is logged in at the third,
// whose policy says deny. The job goes on past the refusals (a skipped run
// is not a failure, even with --max-failures 0) and shows succeeded /
// skipped (denied) / skipped (no user); only the approved fix ran; each
// decision, signed by its agent, is in the audit log, which verifies.
func TestFixConsentAcrossAFleet(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	r := StartRelay(t)
	cli := r.Login(r.AdminToken())
	good := newSigner(t, "secops@example.com")
	trust := good.allowedSigners(t)
	tok := cli.Token("--tags", "fleet=consent", "--uses", "3")

	dir := t.TempDir()
	askedYes, askedNo := filepath.Join(dir, "asked-yes"), filepath.Join(dir, "asked-no")
	yes := r.Enroll(tok, "--trust", trust).startWith("--consent-backend", "exec:"+consentProgram(t, true, askedYes))
	no := r.Enroll(tok, "--trust", trust).startWith("--consent-backend", "exec:"+consentProgram(t, false, askedNo))
	agents := []*Agent{yes, no}
	var nobody *Agent
	if helperBackendReady() {
		// Helpers connect to this socket from users' sessions; none does.
		nobody = r.Enroll(tok, "--trust", trust)
		policy := fmt.Sprintf(`{"mode":"prompt","backend":"helper","timeout":"60s","when_no_user":"deny","helper_socket":%q}`,
			filepath.Join(t.TempDir(), "helper.sock"))
		if err := os.WriteFile(filepath.Join(nobody.Dir, consent.FileName), []byte(policy), 0o600); err != nil {
			t.Fatal(err)
		}
		nobody.startWith("--consent-backend", "helper")
		agents = append(agents, nobody)
	} else {
		t.Log("the helper consent backend is not built yet: the third agent (nobody logged in, when_no_user deny) is left out")
	}
	for _, a := range agents {
		waitFor(t, 20*time.Second, "agent "+a.ID+" online", func() bool { return cli.Online(a.ID) })
	}

	cli.publish(t, good, bin("plugins/script"))
	script := filepath.Join(dir, "consent-fix.sh")
	if err := os.WriteFile(script, []byte(consentScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cli.Run("plugins", "sign", "--key", good.Key, script)
	cli.Run("scripts", "publish", script)

	// A dry run never asks anyone.
	marker := filepath.Join(dir, "marker")
	j, err := cli.runJob(t, "script", "--target", "fleet=consent", "--param", "name=consent-fix", "--param", "marker="+marker, "--dry-run")
	if err != nil || j.State != "done" || len(j.Results) != len(agents) {
		t.Fatalf("dry run: %v %+v", err, j)
	}
	for _, res := range j.Results {
		if res.State != "succeeded" || !res.Needed || res.Consent != nil {
			t.Fatalf("dry run result = %+v", res)
		}
	}
	if lines(t, askedYes)+lines(t, askedNo) != 0 || lines(t, marker) != 0 {
		t.Fatal("a dry run asked for consent or ran the fix")
	}

	j, err = cli.runJob(t, "script", "--target", "fleet=consent", "--param", "name=consent-fix", "--param", "marker="+marker,
		"--reason", "INC-77: printer queue", "--max-failures", "0")
	if err != nil {
		t.Fatalf("the job failed (a skipped run must not fail it): %v %+v", err, j)
	}
	if j.State != "done" || j.Counts["succeeded"] != 1 || j.Counts["skipped"] != len(agents)-1 || j.Counts["failed"] != 0 {
		t.Fatalf("job = %s %v", j.State, j.Counts)
	}
	byAgent := map[string]apiv1.RunResult{}
	for _, res := range j.Results {
		byAgent[res.AgentID] = res
	}
	if res, c := byAgent[yes.ID], byAgent[yes.ID].Consent; res.State != "succeeded" || c == nil || !c.Approved || c.By != "alice" || c.Mode != "prompt" {
		t.Fatalf("approving agent: %+v consent %+v", res, c)
	}
	if res, c := byAgent[no.ID], byAgent[no.ID].Consent; res.State != "skipped" || res.Summary != "fix not run: denied by the user" ||
		c == nil || c.Approved || c.By != "bob" || c.Message != "denied by the user" {
		t.Fatalf("denying agent: %+v consent %+v", res, c)
	}
	if nobody != nil {
		if res, c := byAgent[nobody.ID], byAgent[nobody.ID].Consent; res.State != "skipped" || !strings.Contains(res.Summary, "nobody is logged in") ||
			c == nil || c.Approved || c.By != consent.ByNoUser {
			t.Fatalf("agent with nobody logged in: %+v consent %+v", res, c)
		}
	}
	// Only the approved fix ran; each person was asked once, with the
	// technician and the reason.
	if n := lines(t, marker); n != 1 {
		t.Fatalf("the fix ran %d times, want 1 (only where it was approved)", n)
	}
	for _, asked := range []string{askedYes, askedNo} {
		b, _ := os.ReadFile(asked)
		if n := lines(t, asked); n != 1 || !strings.Contains(string(b), "INC-77: printer queue") || !strings.Contains(string(b), j.CreatedBy) {
			t.Fatalf("%s: asked %d times: %s", asked, n, b)
		}
	}

	// jobs show says who decided, as text.
	show := cli.Run("jobs", "show", j.ID)
	for _, want := range []string{"consent: approved by alice", "fix not run: denied by the user (consent: denied by bob)"} {
		if !strings.Contains(show, want) {
			t.Fatalf("jobs show lacks %q:\n%s", want, show)
		}
	}
	if nobody != nil && !strings.Contains(show, "fix not run: nobody is logged in at the machine") {
		t.Fatalf("jobs show lacks the no-user reason:\n%s", show)
	}

	// The audit log has each decision with the receipt its agent signed.
	var recs []audit.Record
	if err := json.Unmarshal([]byte(cli.Run("audit", "list", "--limit", "1000", "-o", "json")), &recs); err != nil {
		t.Fatal(err)
	}
	decisions := map[string]string{} // agent -> action
	for _, rec := range recs {
		if rec.Action != "fix.approved" && rec.Action != "fix.denied" {
			continue
		}
		decisions[rec.Detail["agent"]] = rec.Action
		s, ok, err := receipt.FromDetail(rec.Detail)
		if err != nil || !ok {
			t.Fatalf("%s record without a receipt (%v): %+v", rec.Action, err, rec.Detail)
		}
		got, err := receipt.Decode(s.Receipt)
		if err != nil || got.Kind != receipt.KindFix || got.AgentID != rec.Detail["agent"] || got.JobID != j.ID || got.Reason != "INC-77: printer queue" {
			t.Fatalf("receipt %+v (%v) in %+v", got, err, rec.Detail)
		}
	}
	want := map[string]string{yes.ID: "fix.approved", no.ID: "fix.denied"}
	if nobody != nil {
		want[nobody.ID] = "fix.denied"
	}
	if fmt.Sprint(decisions) != fmt.Sprint(want) {
		t.Fatalf("audited decisions = %v, want %v", decisions, want)
	}
	if out := cli.Run("audit", "verify"); !strings.Contains(out, "audit log verified") {
		t.Fatalf("audit verify: %s", out)
	}
}
