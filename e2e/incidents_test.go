package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// An agent_offline alert becomes an incident (--from-alert); a note is
// added; a known fix whose symptom matches is offered by incidents show
// (and alerts show), never run; the incident is resolved with what fixed
// it; every step is in the audit log.
func TestIncidentFromAlertWithKnownFix(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	r := StartRelayArgs(t, "--alert-offline-after", "2s")
	cli := r.Login(r.AdminToken())
	a := r.Enroll(cli.Token()).Start()
	waitFor(t, 20*time.Second, "agent online", func() bool { return cli.Online(a.ID) })

	// Known fixes: one by check (the alert's kind), one by a regexp over
	// the summary, one that does not match. A catastrophic pattern is refused.
	cli.Run("known-fixes", "create", "restart-agent", "--check", "agent_offline", "--plugin", "script", "--param", "name=restart-agent",
		"--title", "Restart the agent service", "--description", "Ask the user to **reboot** if the service will not start.")
	cli.Run("known-fixes", "create", "offline-net", "--pattern", `offline since \d{4}-`, "--regexp", "--plugin", "netreset", "--param", "adapter=all")
	cli.Run("known-fixes", "create", "disk-temp", "--check", "disk_space", "--plugin", "cacheclear", "--param", "scopes=temp")
	if _, errOut, err := cli.Try("known-fixes", "create", "bad", "--pattern", "a{1000}b{1000}c{1000}d{1000}e{1000}f{1000}", "--regexp", "--plugin", "x"); err == nil || !strings.Contains(errOut, "too complex") {
		t.Fatalf("oversized regexp accepted: %v %s", err, errOut)
	}
	if out := cli.Run("known-fixes", "search", "REBOOT"); !strings.Contains(out, "restart-agent") || strings.Contains(out, "disk-temp") {
		t.Fatalf("known-fixes search:\n%s", out)
	}

	a.proc.stop(t)
	var alert apiv1.Alert
	waitFor(t, 30*time.Second, "an agent_offline alert", func() bool {
		for _, x := range cli.alerts(t, "--state", "open", "--kind", "agent_offline") {
			if x.AgentID == a.ID {
				alert = x
				return true
			}
		}
		return false
	})
	out := cli.Run("alerts", "show", alert.ID[:18])
	if !strings.Contains(out, "Known fix: restart-agent — patchbay run script --target id="+a.ID+" --param name=restart-agent") ||
		!strings.Contains(out, "Known fix: offline-net — patchbay run netreset --target id="+a.ID+" --param adapter=all") || strings.Contains(out, "disk-temp") {
		t.Fatalf("alerts show:\n%s", out)
	}

	// The alert becomes an incident.
	var inc apiv1.Incident
	out = cli.Run("incidents", "create", "--from-alert", alert.ID[:18], "--ticket", "INC-1234", "-o", "json")
	if err := json.Unmarshal([]byte(out), &inc); err != nil {
		t.Fatalf("incidents create: %v\n%s", err, out)
	}
	if inc.Title != alert.Summary || inc.Site != "default/default" || inc.Severity != alert.Severity || inc.Ticket != "INC-1234" ||
		len(inc.Agents) != 1 || inc.Agents[0] != a.ID || len(inc.Links) != 1 || inc.Links[0].Kind != "alert" || inc.Links[0].ID != alert.ID {
		t.Fatalf("incident from alert: %+v", inc)
	}
	noteFile := filepath.Join(t.TempDir(), "note.md")
	if err := os.WriteFile(noteFile, []byte("## Findings\n- the machine was **unplugged**\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := cli.Run("incidents", "note", inc.ID[:18], "--file", noteFile); !strings.Contains(out, "1 notes") {
		t.Fatalf("incidents note: %s", out)
	}
	if out := cli.Run("incidents", "note", inc.ID[:18], "called the user"); !strings.Contains(out, "2 notes") {
		t.Fatalf("incidents note: %s", out)
	}
	out = cli.Run("incidents", "show", inc.ID[:18])
	for _, want := range []string{"INC-1234", "## Findings", "the machine was **unplugged**", "called the user", "Linked alert: " + alert.ID,
		"Known fix: restart-agent — patchbay run script --target id=" + a.ID + " --param name=restart-agent"} {
		if !strings.Contains(out, want) {
			t.Errorf("incidents show lacks %q:\n%s", want, out)
		}
	}
	if out := cli.Run("incidents", "list", "--state", "open"); !strings.Contains(out, inc.ID) || !strings.Contains(out, "INC-1234") {
		t.Fatalf("incidents list:\n%s", out)
	}
	// Offered, never run: no job exists.
	if out := cli.Run("jobs", "list"); strings.Contains(out, "netreset") || strings.Contains(out, "script") {
		t.Fatalf("a known fix ran by itself:\n%s", out)
	}
	// Closing asks what fixed it: without a terminal, --resolution is required.
	if _, errOut, err := cli.Try("incidents", "resolve", inc.ID); err == nil || !strings.Contains(errOut, "--resolution is required") {
		t.Fatalf("resolve without resolution: %v %s", err, errOut)
	}
	out = cli.Run("incidents", "resolve", inc.ID[:18], "--resolution", "plugged the machine back in", "--known-fix", "restart-agent")
	if !strings.Contains(out, "is resolved") {
		t.Fatalf("incidents resolve: %s", out)
	}
	if _, errOut, err := cli.Try("incidents", "resolve", inc.ID, "--resolution", "again"); err == nil || !strings.Contains(errOut, "resolved already") {
		t.Fatalf("resolve twice: %v %s", err, errOut)
	}
	out = cli.Run("incidents", "show", inc.ID)
	if !strings.Contains(out, "plugged the machine back in") || !strings.Contains(out, "Fixed by known fix: restart-agent") {
		t.Fatalf("resolved incident:\n%s", out)
	}
	audit := cli.Run("audit", "list")
	for _, want := range []string{"known-fix.create", "incident.create", "incident.note", "incident.resolve"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
}

// Closing an incident asks what fixed it: on a terminal without
// --resolution the CLI asks, and the answer is the resolution.
func TestIncidentResolveAsksOnATerminal(t *testing.T) {
	r := StartRelay(t)
	cli := r.Login(r.AdminToken())
	var inc apiv1.Incident
	decodeInto(t, cli.Run("incidents", "create", "--title", "no network", "--site", "default/default", "-o", "json"), &inc)

	cmd := exec.Command(bin("patchbay"), "incidents", "resolve", inc.ID)
	cmd.Env = append(os.Environ(), cli.env...)
	ptmx, err := pty.Start(cmd)
	if err != nil {
		t.Fatalf("start patchbay on a pseudo-terminal (/dev/ptmx, devpts must be mounted): %v", err)
	}
	defer ptmx.Close()
	var out bytes.Buffer
	asked := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 1024)
		seen := false
		for {
			n, err := ptmx.Read(buf)
			out.Write(buf[:n])
			if !seen && strings.Contains(out.String(), "What fixed it?") {
				close(asked)
				seen = true
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-asked:
	case <-time.After(20 * time.Second):
		t.Fatal("patchbay incidents resolve did not ask what fixed it")
	}
	if _, err := ptmx.Write([]byte("replaced the cable\n")); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("patchbay incidents resolve: %v", err)
	}
	ptmx.Close()
	<-readDone
	if !strings.Contains(out.String(), "is resolved: replaced the cable") {
		t.Fatalf("terminal shows %q", out.String())
	}
	var got apiv1.Incident
	decodeInto(t, cli.Run("incidents", "show", inc.ID, "-o", "json"), &got)
	if got.State != "resolved" || got.Resolution != "replaced the cable" {
		t.Fatalf("incident after the prompt: %+v", got)
	}
}
