package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// startJob creates a job without waiting and returns its ID.
func (c *CLI) startJob(t *testing.T, args ...string) string {
	t.Helper()
	out := strings.TrimSpace(c.Run(append([]string{"run"}, args...)...))
	lines := strings.Split(out, "\n")
	return lines[len(lines)-1]
}

func (c *CLI) job(t *testing.T, id string) apiv1.Job {
	t.Helper()
	var j apiv1.Job
	if err := json.Unmarshal([]byte(c.Run("jobs", "show", id, "-o", "json")), &j); err != nil {
		t.Fatal(err)
	}
	return j
}

func lines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// A relay SIGKILLed while an agent runs a fix, and started again, loses no
// result and runs nothing twice: the agent finishes while the relay is
// down, gets the run delivered again after reconnecting, answers with its
// journaled result instead of running it, and the relay stores it.
func TestRelayKilledMidJobLosesNothingAndRerunsNothing(t *testing.T) {
	f := newPluginFleet(t)
	cli, target := f.cli, "id="+f.agent.ID
	cli.publish(t, f.good, bin("plugins/testplugin"))
	count := filepath.Join(t.TempDir(), "count")
	id := cli.startJob(t, "testplugin", "--target", target, "--param", "countfile="+count, "--param", "sleep=3s")
	waitFor(t, 20*time.Second, "the fix to start", func() bool { return lines(t, count) == 1 })
	f.relay.proc.kill()
	time.Sleep(4 * time.Second) // the fix finishes while the relay is down
	f.relay.Start()
	waitFor(t, 60*time.Second, "the job to end", func() bool { return cli.job(t, id).Final() })
	j := cli.job(t, id)
	if r := onlyResult(t, j); r.State != "succeeded" || r.Summary != "fixed" {
		t.Fatalf("result after relay restart: %+v", r)
	}
	if n := lines(t, count); n != 1 {
		t.Fatalf("the fix ran %d times, want 1", n)
	}
	if !strings.Contains(f.agent.proc.log.String(), "instead of running it twice") &&
		!strings.Contains(f.relay.Log().String(), "run_result") {
		t.Log("note: the run was not redelivered (the result arrived first)")
	}
}

// An agent killed in the middle of a run reports that run as failed
// (interrupted) when it comes back, and does not run it again.
func TestAgentKilledMidRunReportsInterrupted(t *testing.T) {
	f := newPluginFleet(t)
	cli, target := f.cli, "id="+f.agent.ID
	cli.publish(t, f.good, bin("plugins/testplugin"))
	count := filepath.Join(t.TempDir(), "count")
	id := cli.startJob(t, "testplugin", "--target", target, "--param", "countfile="+count, "--param", "sleep=1m")
	waitFor(t, 20*time.Second, "the fix to start", func() bool { return lines(t, count) == 1 })
	f.agent.proc.kill()
	f.agent.Start()
	waitFor(t, 60*time.Second, "the job to end", func() bool { return cli.job(t, id).Final() })
	r := onlyResult(t, cli.job(t, id))
	if r.State != "failed" || !strings.Contains(r.Error, "interrupted") {
		t.Fatalf("result = %+v", r)
	}
	if n := lines(t, count); n != 1 {
		t.Fatalf("the fix ran %d times, want 1", n)
	}
}

// An offline agent gets the job when it comes back; one that stays offline
// past --expires ends expired; jobs cancel leaves nothing non-final.
func TestOfflineCatchUpExpiryAndCancel(t *testing.T) {
	f := newPluginFleet(t)
	cli := f.cli
	cli.publish(t, f.good, bin("plugins/testplugin"))
	late := f.relay.Enroll(cli.Token("--tags", "fleet=plugins"), "--trust", f.good.allowedSigners(t))
	late.Start()
	waitFor(t, 10*time.Second, "second agent online", func() bool { return cli.Online(late.ID) })
	late.proc.kill()
	waitFor(t, 10*time.Second, "second agent offline", func() bool { return !cli.Online(late.ID) })

	id := cli.startJob(t, "testplugin", "--target", "fleet=plugins", "--param", "mode=echo", "--param", "text=caught up")
	waitFor(t, 20*time.Second, "the online agent's result", func() bool { return cli.job(t, id).Counts["succeeded"] == 1 })
	if j := cli.job(t, id); j.Final() || j.Counts["pending"] != 1 {
		t.Fatalf("job ended or lost the offline agent: %+v", j.Counts)
	}
	late.Start()
	waitFor(t, 30*time.Second, "the job to end after the agent came back", func() bool { return cli.job(t, id).Final() })
	if j := cli.job(t, id); j.Counts["succeeded"] != 2 {
		t.Fatalf("counts = %v", j.Counts)
	}

	// Offline past --expires: expired, while the online agent succeeds.
	late.proc.kill()
	waitFor(t, 10*time.Second, "second agent offline", func() bool { return !cli.Online(late.ID) })
	id = cli.startJob(t, "testplugin", "--target", "fleet=plugins", "--param", "mode=echo", "--param", "text=x", "--expires", "3s")
	waitFor(t, 30*time.Second, "the job to expire", func() bool { return cli.job(t, id).Final() })
	if j := cli.job(t, id); j.Counts["succeeded"] != 1 || j.Counts["expired"] != 1 {
		t.Fatalf("expiry counts = %v", j.Counts)
	}
	late.Start()
	waitFor(t, 10*time.Second, "second agent back", func() bool { return cli.Online(late.ID) })

	// Cancel: the offline agent's run is cancelled at once, nothing left open.
	late.proc.kill()
	waitFor(t, 10*time.Second, "second agent offline", func() bool { return !cli.Online(late.ID) })
	id = cli.startJob(t, "testplugin", "--target", "fleet=plugins", "--param", "sleep=1m")
	waitFor(t, 20*time.Second, "one run to start", func() bool { return cli.job(t, id).Counts["running"] == 1 })
	cli.Run("jobs", "cancel", id)
	waitFor(t, 30*time.Second, "the cancelled job to end", func() bool { return cli.job(t, id).Final() })
	j := cli.job(t, id)
	if j.State != "cancelled" || j.Counts["cancelled"] != 2 {
		t.Fatalf("cancelled job: state %s counts %v", j.State, j.Counts)
	}
}
