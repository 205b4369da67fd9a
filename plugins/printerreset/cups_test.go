//go:build !windows

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/cupstest"
	"github.com/patchbay/patchbay/plugins/sdk"
	"github.com/patchbay/patchbay/plugins/sdk/sdktest"
)

const pluginPkg = "github.com/patchbay/patchbay/plugins/printerreset"

// testCUPS is a private cupsd (internal/cupstest) with the plugin's
// lpstat readers.
type testCUPS struct {
	*cupstest.Server
	t      *testing.T
	server string // 127.0.0.1:PORT, for cups_server
}

func startCUPS(t *testing.T) *testCUPS {
	t.Helper()
	s := cupstest.Start(t)
	return &testCUPS{Server: s, t: t, server: s.Addr}
}

func (c *testCUPS) run(name string, args ...string) string {
	c.t.Helper()
	return c.Run(name, args...)
}

func (c *testCUPS) addQueue(name string) { c.t.Helper(); c.AddQueue(name) }

func (c *testCUPS) submit(queue string, opts ...string) string {
	c.t.Helper()
	return c.Submit(queue, opts...)
}

func (c *testCUPS) jobs(queue string) []string {
	c.t.Helper()
	jobs, err := parseJobs(c.run("lpstat", "-o", queue), time.Local)
	if err != nil {
		c.t.Fatal(err)
	}
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

func (c *testCUPS) queue(name string) queue {
	c.t.Helper()
	qs, err := parsePrinters(c.run("lpstat", "-p", name))
	if err != nil || len(qs) != 1 {
		c.t.Fatalf("lpstat -p %s: %v %v", name, qs, err)
	}
	acc, reasons, err := parseAccepting(c.run("lpstat", "-a", name))
	if err != nil {
		c.t.Fatal(err)
	}
	mergeAccepting(qs, acc, reasons)
	return qs[0]
}

// startPlugin builds the plugin and starts it with the test's PATH.
func startPlugin(t *testing.T) *sdk.Client {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH")}
	if tz, ok := os.LookupEnv("TZ"); ok {
		env = append(env, "TZ="+tz)
	}
	return sdktest.Start(t, sdktest.Build(t, pluginPkg), env...)
}

func checkDetails(t *testing.T, res sdk.CheckResult) cupsState {
	t.Helper()
	var st cupsState
	if err := json.Unmarshal([]byte(res.Details), &st); err != nil {
		t.Fatalf("check details: %v\n%s", err, res.Details)
	}
	return st
}

func jobIDs(jobs []job) []string {
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

func TestToolEnv(t *testing.T) {
	got := toolEnv([]string{"PATH=/bin", "LANG=de_DE.UTF-8", "LC_TIME=fr_FR", "CUPS_SERVER=elsewhere", "HOME=/root"}, "127.0.0.1:1")
	want := []string{"PATH=/bin", "HOME=/root", "LANG=C", "LC_ALL=C", "CUPS_SERVER=127.0.0.1:1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("toolEnv = %q, want %q", got, want)
	}
}

func TestRunToleratesChildHoldingOutput(t *testing.T) {
	// An init script that starts a daemon exits 0 while the daemon still
	// holds its output: that is success once WaitDelay passes.
	cmd := exec.CommandContext(t.Context(), "sh", "-c", "sleep 1 & exit 0")
	cmd.Stdout = &strings.Builder{}
	cmd.WaitDelay = 50 * time.Millisecond
	if err := run(cmd); err != nil {
		t.Fatalf("run = %v", err)
	}
	cmd = exec.CommandContext(t.Context(), "sh", "-c", "sleep 1 & exit 3")
	cmd.Stdout = &strings.Builder{}
	cmd.WaitDelay = 50 * time.Millisecond
	if err := run(cmd); err == nil {
		t.Fatal("run of a failing command succeeded")
	}
}

func TestFixUnsticksDisabledRejectingQueue(t *testing.T) {
	t.Parallel()
	c := startCUPS(t)
	c.addQueue("testq")
	c.addQueue("fine")
	c.run("cupsdisable", "testq")
	j1, j2 := c.submit("testq"), c.submit("testq")
	c.run("cupsreject", "testq")

	p := startPlugin(t)
	ctx := t.Context()
	params := sdk.Params{"cups_server": c.server}
	chk, err := p.Check(ctx, sdk.Request{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	if want := "queue testq disabled and rejecting jobs; 2 stuck jobs"; !chk.Needed || chk.Summary != want {
		t.Fatalf("check = %+v, want needed and %q", chk, want)
	}
	st := checkDetails(t, chk)
	if got := strings.Join(jobIDs(st.Stuck), " "); got != j1+" "+j2 || len(st.Queues) != 2 {
		t.Fatalf("check details: stuck %q, queues %+v", got, st.Queues)
	}

	res, lines, err := sdktest.Fix(ctx, p, sdk.Request{Params: params})
	if err != nil {
		t.Fatalf("fix: %v\noutput:\n%s", err, strings.Join(lines, "\n"))
	}
	want := "cancelled 2 stuck jobs; re-enabled queue testq; queue testq accepting jobs again"
	if !res.Changed || res.Summary != want {
		t.Fatalf("fix = %+v, want changed and %q", res, want)
	}
	output := strings.Join(lines, "\n")
	for _, w := range []string{"run: cancel " + j1, "run: cancel " + j2, "run: cupsenable testq", "run: cupsaccept testq"} {
		if !strings.Contains(output, w) {
			t.Errorf("fix output lacks %q:\n%s", w, output)
		}
	}
	var rep fixReport
	if err := json.Unmarshal([]byte(res.Details), &rep); err != nil {
		t.Fatalf("fix details: %v\n%s", err, res.Details)
	}
	if len(rep.Cancelled) != 2 || len(rep.Enabled) != 1 || len(rep.Accepting) != 1 || len(rep.After.Stuck) != 0 {
		t.Fatalf("fix details = %+v", rep)
	}

	// The scheduler agrees, and a second Check finds nothing to do.
	if ids := c.jobs("testq"); len(ids) != 0 {
		t.Fatalf("jobs left on testq: %v", ids)
	}
	if q := c.queue("testq"); !q.Enabled || !q.Accepting {
		t.Fatalf("testq after fix: %+v", q)
	}
	chk, err = p.Check(ctx, sdk.Request{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	if chk.Needed || chk.Summary != "2 queues, nothing stuck" {
		t.Fatalf("check after fix = %+v", chk)
	}
	// Fix again: nothing to do.
	res, _, err = sdktest.Fix(ctx, p, sdk.Request{Params: params})
	if err != nil || res.Changed || res.Summary != "nothing to do" {
		t.Fatalf("second fix = %+v, %v", res, err)
	}
}

func TestOlderThanLeavesYoungJobs(t *testing.T) {
	t.Parallel()
	c := startCUPS(t)
	c.addQueue("testq")
	c.run("cupsdisable", "testq")
	p := startPlugin(t) // before the jobs: a slow start must not age them
	// Held jobs, so that the young one stays queued (rather than printing)
	// once the queue is enabled again, where the test can see it.
	old := c.submit("testq", "-H", "hold")
	time.Sleep(5 * time.Second)
	young := c.submit("testq", "-H", "hold")

	ctx := t.Context()
	chk, err := p.Check(ctx, sdk.Request{Params: sdk.Params{"cups_server": c.server, "older_than": "1h"}})
	if err != nil {
		t.Fatal(err)
	}
	if st := checkDetails(t, chk); !chk.Needed || chk.Summary != "queue testq disabled" || len(st.Stuck) != 0 || st.Waiting != 2 {
		t.Fatalf("check older_than=1h = %+v", chk)
	}

	res, lines, err := sdktest.Fix(ctx, p, sdk.Request{Params: sdk.Params{"cups_server": c.server, "older_than": "3s"}})
	if err != nil {
		t.Fatalf("fix: %v\noutput:\n%s", err, strings.Join(lines, "\n"))
	}
	if want := "cancelled 1 stuck job; re-enabled queue testq"; res.Summary != want {
		t.Fatalf("fix summary = %q, want %q", res.Summary, want)
	}
	if ids := c.jobs("testq"); len(ids) != 1 || ids[0] != young {
		t.Fatalf("jobs left = %v, want only the young %s (old was %s)", ids, young, old)
	}
	chk, err = p.Check(ctx, sdk.Request{Params: sdk.Params{"cups_server": c.server, "older_than": "1h"}})
	if err != nil {
		t.Fatal(err)
	}
	if chk.Needed || chk.Summary != "1 queue, nothing stuck (1 job waiting)" {
		t.Fatalf("check after fix = %+v", chk)
	}
}

func TestQueueParamLimitsFix(t *testing.T) {
	t.Parallel()
	c := startCUPS(t)
	for _, q := range []string{"testq", "other-q"} {
		c.addQueue(q)
		c.run("cupsdisable", q)
		c.submit(q)
	}
	p := startPlugin(t)
	ctx := t.Context()

	chk, err := p.Check(ctx, sdk.Request{Params: sdk.Params{"cups_server": c.server}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "queue testq disabled; queue other-q disabled; 2 stuck jobs"; chk.Summary != want &&
		chk.Summary != "queue other-q disabled; queue testq disabled; 2 stuck jobs" {
		t.Fatalf("check all = %q, want %q (either order)", chk.Summary, want)
	}
	res, _, err := sdktest.Fix(ctx, p, sdk.Request{Params: sdk.Params{"cups_server": c.server, "queue": "other-q"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "cancelled 1 stuck job; re-enabled queue other-q"; res.Summary != want {
		t.Fatalf("fix summary = %q, want %q", res.Summary, want)
	}
	if q := c.queue("testq"); q.Enabled || len(c.jobs("testq")) != 1 {
		t.Fatalf("testq was touched: %+v, jobs %v", q, c.jobs("testq"))
	}
	if q := c.queue("other-q"); !q.Enabled || len(c.jobs("other-q")) != 0 {
		t.Fatalf("other-q not fixed: %+v, jobs %v", q, c.jobs("other-q"))
	}
	_, err = p.Check(ctx, sdk.Request{Params: sdk.Params{"cups_server": c.server, "queue": "nosuch"}})
	if err == nil || !strings.Contains(err.Error(), "queue nosuch: no such CUPS queue") {
		t.Fatalf("check unknown queue: err = %v", err)
	}
	_, err = p.Check(ctx, sdk.Request{Params: sdk.Params{"cups_server": c.server, "queue": "-x"}})
	if err == nil || !strings.Contains(err.Error(), "not a valid queue name") {
		t.Fatalf("check queue -x: err = %v", err)
	}
}

func TestSchedulerNotAnswering(t *testing.T) {
	t.Parallel()
	cupstest.Require(t)
	port, err := cupstest.FreePort() // nothing listens there once freePort returns
	if err != nil {
		t.Fatal(err)
	}
	server := fmt.Sprintf("127.0.0.1:%d", port)
	p := startPlugin(t)
	ctx := t.Context()
	chk, err := p.Check(ctx, sdk.Request{Params: sdk.Params{"cups_server": server}})
	if err != nil {
		t.Fatal(err)
	}
	want := "the CUPS scheduler at " + server + " is not running (a scheduler chosen by cups_server is never restarted)"
	if !chk.Needed || chk.Summary != want {
		t.Fatalf("check = %+v, want %q", chk, want)
	}
	// Fix refuses to restart a scheduler it was pointed at, whatever
	// restart_scheduler says, and restarts nothing on this machine.
	for _, restart := range []string{"true", "false"} {
		_, _, err = sdktest.Fix(ctx, p, sdk.Request{Params: sdk.Params{"cups_server": server, "restart_scheduler": restart}})
		if err == nil || !strings.Contains(err.Error(), "never restarted") {
			t.Fatalf("fix restart_scheduler=%s: err = %v", restart, err)
		}
	}
}
