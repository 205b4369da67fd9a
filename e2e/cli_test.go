package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// TestCLIAgreesWithWhatItShows drives the real CLI against a real relay and
// agent: a script runs by its name, jobs show prints its output as text and
// details as an object, agents are named by ID prefix, a revoked agent is
// shown as revoked and a job tells how many it left out.
func TestCLIAgreesWithWhatItShows(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	f := newPluginFleet(t)
	cli := f.cli
	cli.publish(t, f.good, bin("plugins/script"))
	script := filepath.Join(t.TempDir(), "echo-param.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n# patchbay:begin\n# name: echo-param\n# description: prints x\n# os: linux, darwin\n# param: x string -- any text\n# patchbay:end\nprintf 'X=[%s]\\n' \"$PATCHBAY_PARAM_X\"\necho second line\n"), 0o644)
	cli.Run("scripts", "sign", "--key", f.good.Key, script)
	cli.Run("scripts", "publish", script)

	// A second agent on the same machine (same hostname), revoked by an ID prefix.
	other := f.relay.Enroll(cli.Token())
	if out, errOut, err := cli.Try("agents", "show", f.agent.ID[:30]); err != nil || !strings.Contains(out, f.agent.ID) {
		t.Fatalf("agents show PREFIX: %v %s %s", err, out, errOut)
	}
	host, _ := os.Hostname()
	if _, errOut, err := cli.Try("agents", "show", host); err == nil || !strings.Contains(errOut, "names 2 agents") ||
		!strings.Contains(errOut, f.agent.ID) || !strings.Contains(errOut, other.ID) {
		t.Fatalf("agents show of a shared hostname: %v %s", err, errOut)
	}
	cli.Run("agents", "revoke", other.ID[:30])
	list := cli.Run("agents", "list")
	if !lineWith(list, other.ID, "revoked") || !lineWith(list, f.agent.ID, "online") {
		t.Fatalf("agents list:\n%s", list)
	}

	// The script by its name; the revoked agent is left out and said so.
	out, errOut, err := cli.Try("run", "echo-param", "--target", "all", "--param", "x=hi", "--wait")
	if err != nil {
		t.Fatalf("run echo-param: %v\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{"echo-param is a script", "1 matching agent is revoked and was not targeted."} {
		if !strings.Contains(errOut, want) {
			t.Errorf("run stderr lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, "  output:\n    X=[hi]\n    second line\n") {
		t.Errorf("run --wait does not show the output as text:\n%s", out)
	}
	jobID := strings.Fields(strings.TrimPrefix(out, "Job "))[0]
	jobID = strings.TrimSuffix(jobID, ":")

	// jobs show by a prefix, text and JSON.
	show := cli.Run("jobs", "show", jobID[:30])
	if !strings.Contains(show, f.agent.ID) || !strings.Contains(show, "    X=[hi]") {
		t.Errorf("jobs show PREFIX:\n%s", show)
	}
	var j struct {
		Results []map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal([]byte(cli.Run("jobs", "show", jobID, "-o", "json")), &j); err != nil || len(j.Results) != 1 {
		t.Fatalf("jobs show -o json: %v %+v", err, j)
	}
	if d := j.Results[0]["details"]; len(d) > 0 && d[0] != '{' {
		t.Errorf("details is not an object: %s", d)
	}
	if _, errOut, err := cli.Try("jobs", "show", "ffff"); err == nil || !strings.Contains(errOut, `no job with ID or ID prefix "ffff": patchbay jobs list shows them`) {
		t.Errorf("unknown job: %v %s", err, errOut)
	}

	// A target that matches only the revoked agent is refused, saying why.
	if _, errOut, err := cli.Try("run", "echo-param", "--target", "id="+other.ID); err == nil ||
		!strings.Contains(errOut, "the 1 that match are revoked") {
		t.Errorf("job on a revoked agent only: %v %s", err, errOut)
	}

	// version names the relay.
	var v struct {
		Version string `json:"version"`
		Relay   *struct{ Server, Version string }
	}
	if err := json.Unmarshal([]byte(cli.Run("version", "-o", "json")), &v); err != nil || v.Relay == nil || v.Relay.Server != f.relay.URL {
		t.Errorf("version -o json: %v %+v", err, v)
	}
	var agents []apiv1.Agent
	json.Unmarshal([]byte(cli.Run("agents", "list", "-o", "json")), &agents)
	for _, ag := range agents {
		if ag.Revoked != (ag.ID == other.ID) {
			t.Errorf("agent %s revoked=%v in JSON", ag.ID, ag.Revoked)
		}
	}
}

func lineWith(s string, parts ...string) bool {
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
