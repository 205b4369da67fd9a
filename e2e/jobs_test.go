package e2e

import (
	"encoding/csv"
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
	// Another technician may not cancel it (issue 15: technicians cancel only their own jobs).
	tess := f.relay.Login(strings.TrimSpace(strings.SplitN(cli.Run("api-tokens", "create", "--role", "technician", "--name", "tess"), "\n", 2)[0]))
	if _, errOut, err := tess.Try("jobs", "cancel", id); err == nil || !strings.Contains(errOut, "a technician cancels only their own jobs") {
		t.Fatalf("another technician's cancel: %v %q; want refused", err, errOut)
	}
	if j := cli.job(t, id); j.Final() {
		t.Fatalf("the refused cancel changed the job: %+v", j)
	}
	cli.Run("jobs", "cancel", id)
	waitFor(t, 30*time.Second, "the cancelled job to end", func() bool { return cli.job(t, id).Final() })
	j := cli.job(t, id)
	if j.State != "cancelled" || j.Counts["cancelled"] != 2 {
		t.Fatalf("cancelled job: state %s counts %v", j.State, j.Counts)
	}
}

// fleetOf starts n more agents tagged fleet=plugins that trust f.good.
func (f *pluginFleet) fleetOf(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		a := f.relay.Enroll(f.cli.Token("--tags", "fleet=plugins"), "--trust", f.good.allowedSigners(t)).Start()
		waitFor(t, 20*time.Second, "agent online", func() bool { return f.cli.Online(a.ID) })
	}
}

func TestConcurrencyIsNeverExceeded(t *testing.T) {
	f := newPluginFleet(t)
	f.fleetOf(t, 4) // five agents
	f.cli.publish(t, f.good, bin("plugins/testplugin"))
	j, err := f.cli.runJob(t, "testplugin", "--target", "fleet=plugins", "--concurrency", "2", "--param", "sleep=1500ms")
	if err != nil || j.Counts["succeeded"] != 5 {
		t.Fatalf("job: %v %v", err, j.Counts)
	}
	// At no moment did more than two agents run it (their own start and
	// end times, as reported).
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, r := range j.Results {
		edges = append(edges, edge{*r.Started, +1}, edge{*r.Ended, -1})
	}
	sortEdges := func() {
		for i := 1; i < len(edges); i++ {
			for k := i; k > 0 && (edges[k].at.Before(edges[k-1].at) || edges[k].at.Equal(edges[k-1].at) && edges[k].delta < edges[k-1].delta); k-- {
				edges[k], edges[k-1] = edges[k-1], edges[k]
			}
		}
	}
	sortEdges()
	running, peak := 0, 0
	for _, e := range edges {
		running += e.delta
		peak = max(peak, running)
	}
	if peak > 2 {
		t.Fatalf("%d runs overlapped, --concurrency 2", peak)
	}
	if peak < 2 {
		t.Logf("note: runs never overlapped (peak %d)", peak)
	}

	// Export: CSV with a header and one row per agent; JSON with every result.
	rows, err := csv.NewReader(strings.NewReader(f.cli.Run("jobs", "export", j.ID, "-o", "csv"))).ReadAll()
	if err != nil || len(rows) != 6 || rows[0][0] != "run_id" || rows[1][3] != "succeeded" {
		t.Fatalf("csv export: %v %v", err, rows)
	}
	var exp struct {
		Job     apiv1.Job         `json:"job"`
		Results []apiv1.RunResult `json:"results"`
	}
	if err := json.Unmarshal([]byte(f.cli.Run("jobs", "export", j.ID, "-o", "json")), &exp); err != nil || len(exp.Results) != 5 || exp.Job.ID != j.ID {
		t.Fatalf("json export: %v %+v", err, exp)
	}
	// Watch on an ended job prints it at once.
	var w apiv1.Job
	if err := json.Unmarshal([]byte(f.cli.Run("jobs", "watch", j.ID, "-o", "json")), &w); err != nil || w.State != "done" {
		t.Fatalf("watch: %v %+v", err, w)
	}
}

func TestFailingCanaryHaltsTheRest(t *testing.T) {
	f := newPluginFleet(t)
	f.fleetOf(t, 3) // four agents
	f.cli.publish(t, f.good, bin("plugins/testplugin"))
	j, err := f.cli.runJob(t, "testplugin", "--target", "fleet=plugins", "--canary", "1", "--max-failures", "0", "--param", "mode=fail")
	if err == nil {
		t.Fatal("a halted job exited 0")
	}
	if j.State != "halted" || j.Counts["failed"] != 1 || j.Counts["halted"] != 3 {
		t.Fatalf("job state %s counts %v", j.State, j.Counts)
	}
	for _, r := range j.Results {
		if r.State == "halted" && !strings.Contains(r.Error, "halted after 1 failures") {
			t.Fatalf("halted run says %q", r.Error)
		}
	}
	// A canary within the threshold lets the rest run.
	j, err = f.cli.runJob(t, "testplugin", "--target", "fleet=plugins", "--canary", "25%", "--max-failures", "0", "--param", "mode=echo", "--param", "text=ok")
	if err != nil || j.Counts["succeeded"] != 4 {
		t.Fatalf("good canary: %v %v", err, j.Counts)
	}
}
