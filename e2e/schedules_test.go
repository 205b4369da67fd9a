package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

func (c *CLI) schedule(t *testing.T, ref string) apiv1.Schedule {
	t.Helper()
	var s apiv1.Schedule
	if err := json.Unmarshal([]byte(c.Run("schedules", "show", ref, "-o", "json")), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// jobsOf returns the jobs that schedule id created.
func (c *CLI) jobsOf(t *testing.T, id string) []apiv1.Job {
	t.Helper()
	var all []apiv1.Job
	if err := json.Unmarshal([]byte(c.Run("jobs", "list", "-o", "json")), &all); err != nil {
		t.Fatal(err)
	}
	var out []apiv1.Job
	for _, j := range all {
		if j.ScheduleID == id {
			out = append(out, j)
		}
	}
	return out
}

// A schedule fires at its time and its job runs on the agent, audited as
// the schedule's; a schedule whose window is closed creates no job over
// several fire times; a job whose window is closed leaves its run pending
// (never failed) while a job without one runs, and a job whose window
// opens a few seconds later runs then. The specs use cron's optional
// leading seconds field so that the test waits seconds, not minutes.
func TestScheduleFiresAtItsTimeAndOnlyInItsWindow(t *testing.T) {
	f := newPluginFleet(t)
	cli, target := f.cli, "id="+f.agent.ID
	cli.publish(t, f.good, bin("plugins/testplugin"))

	// Bad specs and zones are refused with what to write.
	if _, errOut, err := cli.Try("schedules", "create", "bad", "--cron", "61 * * * *", "--plugin", "testplugin", "--target", target); err == nil || !strings.Contains(errOut, "want 5 fields") {
		t.Fatalf("bad cron accepted: %v %s", err, errOut)
	}
	if _, errOut, err := cli.Try("schedules", "create", "bad", "--cron", "0 3 * * *", "--tz", "Mars/Olympus", "--plugin", "testplugin", "--target", target); err == nil || !strings.Contains(errOut, "IANA") {
		t.Fatalf("unknown zone accepted: %v %s", err, errOut)
	}

	// Every 3 seconds: the first firing creates a job that runs.
	created := time.Now()
	cli.Run("schedules", "create", "every3s", "--cron", "*/3 * * * * *", "--tz", "Europe/Paris", "--plugin", "testplugin",
		"--target", target, "--param", "mode=echo", "--param", "text=scheduled", "--concurrency", "1")
	sc := cli.schedule(t, "every3s")
	if sc.NextFire == nil || sc.NextFire.Second()%3 != 0 {
		t.Fatalf("next fire = %v, want a multiple of 3 s", sc.NextFire)
	}
	var job apiv1.Job
	waitFor(t, 30*time.Second, "the scheduled job to succeed", func() bool {
		for _, j := range cli.jobsOf(t, sc.ID) {
			if j = cli.job(t, j.ID); j.Final() {
				job = j
				return true
			}
		}
		return false
	})
	if r := onlyResult(t, job); r.State != "succeeded" || !strings.Contains(r.Output, "scheduled") {
		t.Fatalf("scheduled run = %+v", r)
	}
	if !strings.Contains(job.CreatedBy, "schedule every3s") || job.Concurrency != 1 {
		t.Fatalf("scheduled job = created by %q, concurrency %d", job.CreatedBy, job.Concurrency)
	}
	// (sc.NextFire may already be a later firing when the machine is slow.)
	if job.CreatedAt.Before(created.Add(-time.Second)) {
		t.Fatalf("job created at %s, before its schedule (%s)", job.CreatedAt, created)
	}
	audit := cli.Run("audit", "list", "-o", "json")
	if !strings.Contains(audit, "schedule every3s") || !strings.Contains(audit, sc.ID) {
		t.Fatal("the audit log does not name the schedule of its job")
	}
	cli.Run("schedules", "pause", sc.ID[:13])
	paused := len(cli.jobsOf(t, sc.ID))
	// Each firing made at most one job: no more jobs than fire times passed
	// (a late claim may create a job in the same second as the next one, so
	// creation times are not compared).
	if fires := int(time.Since(created)/(3*time.Second)) + 1; paused > fires {
		t.Fatalf("%d jobs for at most %d fire times", paused, fires)
	}

	// A window that is closed now (it opens in 12 hours, for 1 hour).
	opens := time.Now().UTC().Add(12 * time.Hour)
	cli.Run("windows", "create", "closed", "--site", "default", "--cron-start", fmt.Sprintf("0 %d * * *", opens.Hour()), "--duration", "1h", "--tz", "UTC")
	cli.Run("schedules", "create", "windowed", "--cron", "*/2 * * * * *", "--plugin", "testplugin", "--target", target,
		"--param", "mode=echo", "--param", "text=x", "--window", "closed")
	ws := cli.schedule(t, "windowed")
	start := time.Now()
	waitFor(t, 30*time.Second, "three fire times of the windowed schedule to pass", func() bool {
		if n := len(cli.jobsOf(t, ws.ID)); n != 0 {
			t.Fatalf("a schedule outside its window created %d job(s)", n)
		}
		s := cli.schedule(t, ws.ID)
		return s.NextFire != nil && s.NextFire.After(start.Add(6*time.Second)) && strings.Contains(s.LastError, "outside window")
	})
	if n := len(cli.jobsOf(t, ws.ID)); n != 0 {
		t.Fatalf("a schedule outside its window created %d job(s)", n)
	}
	if n := len(cli.jobsOf(t, sc.ID)); n != paused {
		t.Fatalf("the paused schedule created %d more job(s)", n-paused)
	}

	// A job with the closed window waits; one without runs meanwhile.
	waiting := cli.startJob(t, "testplugin", "--target", target, "--param", "mode=echo", "--param", "text=w", "--window", "closed")
	if _, err := cli.runJob(t, "testplugin", "--target", target, "--param", "mode=echo", "--param", "text=now"); err != nil {
		t.Fatal(err)
	}
	j := cli.job(t, waiting)
	if j.Final() || j.Counts["pending"] != 1 || j.Counts["failed"] != 0 || !strings.Contains(j.Window, "closed") {
		t.Fatalf("job in a closed window = %+v", j)
	}
	if r := onlyResult(t, j); r.Started != nil {
		t.Fatalf("run of a job in a closed window started: %+v", r)
	}

	// A window that opens in a few seconds: its job runs once it does.
	at := time.Now().UTC().Add(4 * time.Second)
	cli.Run("windows", "create", "soon", "--site", "default", "--cron-start", fmt.Sprintf("%d %d %d * * *", at.Second(), at.Minute(), at.Hour()), "--duration", "1h")
	soon := cli.startJob(t, "testplugin", "--target", target, "--param", "mode=echo", "--param", "text=s", "--window", "default/soon")
	waitFor(t, 30*time.Second, "the job to run when its window opened", func() bool { return cli.job(t, soon).Final() })
	r := onlyResult(t, cli.job(t, soon))
	if r.State != "succeeded" || r.Started == nil || r.Started.Before(at.Truncate(time.Second)) {
		t.Fatalf("run in window opening at %s = %+v", at, r)
	}

	// A patch policy: refused without patchinstall in the catalog; with it,
	// a schedule of kind patch-policy over the site, firing when the
	// window opens, with security_only and the window on its job.
	if _, errOut, err := cli.Try("patch-policies", "create", "--site", "default", "--window", "closed"); err == nil || !strings.Contains(errOut, "patchinstall is not in the catalog") {
		t.Fatalf("patch policy without patchinstall: %v %s", err, errOut)
	}
	pi := filepath.Join(t.TempDir(), "patchinstall")
	if out, err := exec.Command("go", "build", "-o", pi, "../plugins/patchinstall").CombinedOutput(); err != nil {
		t.Fatalf("build patchinstall: %v\n%s", err, out)
	}
	cli.publish(t, f.good, pi)
	if _, errOut, err := cli.Try("patch-policies", "create", "--site", "default", "--window", "closed", "--reboot", "sometimes"); err == nil || !strings.Contains(errOut, "ask, never or force-in-window") {
		t.Fatalf("bad reboot choice: %v %s", err, errOut)
	}
	cli.Run("patch-policies", "create", "--site", "default", "--window", "closed", "--reboot", "force-in-window")
	var pols []apiv1.Schedule
	if err := json.Unmarshal([]byte(cli.Run("patch-policies", "list", "-o", "json")), &pols); err != nil || len(pols) != 1 {
		t.Fatalf("patch policies = %+v, %v", pols, err)
	}
	if p := pols[0]; p.Kind != "patch-policy" || p.Job.Plugin != "patchinstall" || p.Job.Params["security_only"] != "true" ||
		p.Cron != fmt.Sprintf("0 %d * * *", opens.Hour()) || p.Reboot != "force-in-window" || p.Site != "default/default" || !strings.HasSuffix(p.Window, "/closed") {
		t.Fatalf("patch policy = %+v", p)
	}

	if out, errOut, err := cli.Try("windows", "delete", "closed"); err == nil {
		t.Fatalf("deleted a window a schedule uses: %s", out)
	} else if !strings.Contains(errOut, "schedules use it") {
		t.Fatalf("delete window in use: %s", errOut)
	}
}
