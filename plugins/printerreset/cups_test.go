//go:build !windows

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/testtool"
	"github.com/patchbay/patchbay/plugins/sdk"
	"github.com/patchbay/patchbay/plugins/sdk/sdktest"
)

const pluginPkg = "github.com/patchbay/patchbay/plugins/printerreset"

// cupsTools are what the tests run: the scheduler and the client tools.
var cupsTools = []string{"cupsd", "lpadmin", "lp", "lpstat", "cancel", "cupsenable", "cupsdisable", "cupsaccept", "cupsreject"}

// requireCUPS skips the test when CUPS is not installed, or fails it when
// PATCHBAY_REQUIRE_TOOLS is set (CI sets it so a broken install cannot pass
// as a skip).
func requireCUPS(t *testing.T) {
	t.Helper()
	for _, name := range cupsTools {
		if _, err := lookTool(name); err != nil {
			pkg := "cups-client"
			if name == "cupsd" {
				pkg = "cups"
			}
			testtool.Missing(t, name, pkg, err)
		}
	}
}

// testCUPS is a private cupsd, a child of the test, with its configuration,
// spool, state and logs under t.TempDir() and listening on a random
// loopback port. It never touches the machine's own CUPS.
type testCUPS struct {
	t      *testing.T
	dir    string
	server string // 127.0.0.1:PORT, for CUPS_SERVER and cups_server
}

func startCUPS(t *testing.T) *testCUPS {
	t.Helper()
	requireCUPS(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := tryStartCUPS(t, filepath.Join(t.TempDir(), "cups"))
		if err == nil {
			return c
		}
		lastErr = err // most likely the port was taken meanwhile: try another
	}
	t.Fatalf("start cupsd: %v", lastErr)
	return nil
}

func tryStartCUPS(t *testing.T, dir string) (*testCUPS, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"root", "spool", "tmp", "cache", "state", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// cupsd running as root refuses User root and runs filters as lp; as
	// another user it can only run everything as that user.
	account := "SystemGroup root\n"
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, err
		}
		g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
		if err != nil {
			return nil, err
		}
		account = fmt.Sprintf("User %s\nGroup %s\nSystemGroup %s\n", u.Username, g.Name, g.Name)
	}
	files := fmt.Sprintf(`ServerRoot %[1]s/root
RequestRoot %[1]s/spool
TempDir %[1]s/tmp
CacheDir %[1]s/cache
StateDir %[1]s/state
AccessLog %[1]s/log/access_log
ErrorLog %[1]s/log/error_log
PageLog %[1]s/log/page_log
FileDevice Yes
%[2]s`, dir, account)
	conf := fmt.Sprintf(`Listen 127.0.0.1:%d
LogLevel debug
WebInterface No
Browsing No
DefaultAuthType None
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
`, port)
	filesPath, confPath := filepath.Join(dir, "cups-files.conf"), filepath.Join(dir, "cupsd.conf")
	if err := os.WriteFile(filesPath, []byte(files), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cupsd, _ := lookTool("cupsd")
	if out, err := exec.CommandContext(t.Context(), cupsd, "-t", "-c", confPath, "-s", filesPath).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cupsd -t: %v\n%s", err, out)
	}
	// t.Context ends just before the cleanups run: cupsd gets SIGTERM then.
	cmd := exec.CommandContext(t.Context(), cupsd, "-f", "-c", confPath, "-s", filesPath)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	log, err := os.Create(filepath.Join(dir, "log", "cupsd.out"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cupsd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	c := &testCUPS{t: t, dir: dir, server: fmt.Sprintf("127.0.0.1:%d", port)}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("cupsd exited: %v\n%s", err, c.errorLog())
		default:
		}
		out, _ := c.command("lpstat", "-r").Output()
		if strings.TrimSpace(string(out)) == "scheduler is running" {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("cupsd did not answer within 20s\n%s", c.errorLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(stop)
	return c, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *testCUPS) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "log", "error_log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// command is a CUPS tool pointed at this scheduler.
func (c *testCUPS) command(name string, args ...string) *exec.Cmd {
	path, err := lookTool(name)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.CommandContext(c.t.Context(), path, args...)
	cmd.Env = toolEnv(os.Environ(), c.server)
	return cmd
}

// run runs a CUPS tool and fails the test if it fails.
func (c *testCUPS) run(name string, args ...string) string {
	c.t.Helper()
	out, err := c.command(name, args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, c.errorLog())
	}
	return string(out)
}

// addQueue creates an enabled queue printing to /dev/null (CUPS 2.4 takes
// a queue without a PPD or -m; -m raw is deprecated and warns).
func (c *testCUPS) addQueue(name string) {
	c.t.Helper()
	c.run("lpadmin", "-p", name, "-E", "-v", "file:///dev/null")
}

// submit prints a small file to queue and returns the job id.
func (c *testCUPS) submit(queue string, opts ...string) string {
	c.t.Helper()
	doc := filepath.Join(c.dir, "doc.txt")
	if err := os.WriteFile(doc, []byte("hello from the printerreset test\n"), 0o644); err != nil {
		c.t.Fatal(err)
	}
	out := c.run("lp", append(append([]string{"-d", queue}, opts...), doc)...)
	// "request id is testq-1 (1 file(s))"
	f := strings.Fields(out)
	if len(f) < 4 || f[0] != "request" {
		c.t.Fatalf("lp: unexpected output %q", out)
	}
	return f[3]
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
	requireCUPS(t)
	port, err := freePort() // nothing listens there once freePort returns
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
