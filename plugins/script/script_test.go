//go:build unix

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/testtool"
	"github.com/patchbay/patchbay/plugins/sdk"
	"github.com/patchbay/patchbay/plugins/sdk/sdktest"
)

const pluginPkg = "github.com/patchbay/patchbay/plugins/script"

// secretEnv is in the plugin's environment and must not reach scripts.
const secretEnv = "PATCHBAY_TEST_SECRET=do-not-leak"

// start launches the real plugin binary; its temporary files go under tmp.
func start(t *testing.T, tmp string) *sdk.Client {
	t.Helper()
	return sdktest.Start(t, sdktest.Build(t, pluginPkg), "TMPDIR="+tmp, secretEnv)
}

// attach writes a script the way the agent caches one (named by its hash)
// and returns the attachment for it.
func attach(t *testing.T, content string) *sdk.Attachment {
	t.Helper()
	sum := sha256.Sum256([]byte(content))
	h := hex.EncodeToString(sum[:])
	p := filepath.Join(t.TempDir(), h)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return &sdk.Attachment{Name: "ignored", Path: p, SHA256: h}
}

// request builds what the agent sends: name, the script's parameters
// JSON-encoded in args, and the plugin's own parameters.
func request(t *testing.T, att *sdk.Attachment, name string, args map[string]string, own ...string) sdk.Request {
	t.Helper()
	if args == nil {
		args = map[string]string{}
	}
	b, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	p := sdk.Params{"name": name, "args": string(b)}
	for i := 0; i+1 < len(own); i += 2 {
		p[own[i]] = own[i+1]
	}
	return sdk.Request{Params: p, Attachment: att}
}

func header(name string, extra ...string) string {
	return "#!/bin/sh\n# patchbay:begin\n# name: " + name + "\n# description: test script\n# os: linux, darwin\n" +
		strings.Join(append(extra, ""), "\n") + "# patchbay:end\nset -eu\n"
}

const echoBody = `printf 'hex:%s\n' "$(printf '%s' "$PATCHBAY_PARAM_X" | od -An -v -tx1 | tr -d ' \n')"
echo patchbay:unchanged
`

func TestManifest(t *testing.T) {
	m, err := start(t, t.TempDir()).Manifest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range m.Params {
		names = append(names, p.Name+"="+p.Default)
	}
	if m.Name != "script" || m.Version != "1.0.0" || strings.Join(names, " ") != "name= args={} timeout=10m max_output=1048576" {
		t.Fatalf("manifest = %+v", m)
	}
}

// TestHostileValuesArriveVerbatim sends values that would run commands if
// they were ever spliced into a command line or the script's text.
func TestHostileValuesArriveVerbatim(t *testing.T) {
	c := start(t, t.TempDir())
	dir := t.TempDir()
	pwned := filepath.Join(dir, "xyz-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	withManifest := attach(t, header("echo-param", "# param: x string required -- anything")+echoBody)
	free := attach(t, "#!/bin/sh\nset -eu\n"+echoBody)
	values := []string{
		"$(touch " + pwned + ")",
		"`touch " + pwned + "`",
		"'; touch " + pwned + "; rm -rf / #",
		`"quoted" and \"escaped\"`,
		"a\nb",
		"a\nb\n",
		"; echo pwned; touch " + pwned,
		"| touch " + pwned,
		"${IFS}$(touch " + pwned + ")",
		"-n",
		"%s%n\\x41",
		"",
		"  spaces  ",
		"tab\there",
		"\r\n",
		"été ☃",
	}
	for i, v := range values {
		for _, tc := range []struct {
			name string
			att  *sdk.Attachment
			sn   string
		}{{"manifest", withManifest, "echo-param"}, {"free", free, "free"}} {
			t.Run(strconv.Itoa(i)+"/"+tc.name, func(t *testing.T) {
				res, lines, err := sdktest.Fix(context.Background(), c, request(t, tc.att, tc.sn, map[string]string{"x": v}))
				if err != nil {
					t.Fatal(err)
				}
				want := "hex:" + hex.EncodeToString([]byte(v))
				if len(lines) != 2 || lines[0] != want || lines[1] != "patchbay:unchanged" {
					t.Fatalf("value %q: output %q, want %q", v, lines, want)
				}
				if res.Changed {
					t.Fatalf("Changed despite patchbay:unchanged: %+v", res)
				}
				if _, err := os.Stat(pwned); err == nil {
					t.Fatalf("value %q ran a command", v)
				}
			})
		}
	}
}

// TestEnvironment checks the clean environment, the private working
// directory (removed afterwards) and stdin.
func TestEnvironment(t *testing.T) {
	tmp := t.TempDir()
	c := start(t, tmp)
	att := attach(t, header("env", "# param: some_value string")+`
env
echo "cwd=$(pwd)"
if read -r line; then echo "stdin=$line"; else echo "stdin=eof"; fi
`)
	_, lines, err := sdktest.Fix(context.Background(), c, request(t, att, "env", map[string]string{"some_value": "v"}))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	var cwd string
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "cwd":
			cwd = v
		case "stdin":
			if v != "eof" {
				t.Errorf("stdin gave %q", v)
			}
		default:
			env[k] = v
		}
	}
	allowed := map[string]bool{"PWD": true, "OLDPWD": true, "SHLVL": true, "_": true}
	var keys []string
	for k := range env {
		if !allowed[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if got := strings.Join(keys, " "); got != "HOME LANG PATCHBAY_MODE PATCHBAY_PARAM_SOME_VALUE PATH TMPDIR" {
		t.Fatalf("environment keys %s\n%q", got, lines)
	}
	if env["PATH"] != cleanPath || env["LANG"] != "C.UTF-8" || env["PATCHBAY_MODE"] != "fix" || env["PATCHBAY_PARAM_SOME_VALUE"] != "v" {
		t.Fatalf("environment %v", env)
	}
	if !strings.HasPrefix(cwd, tmp) || !strings.HasPrefix(env["TMPDIR"], tmp) || cwd == env["TMPDIR"] {
		t.Fatalf("cwd %q, TMPDIR %q: want separate directories under %q", cwd, env["TMPDIR"], tmp)
	}
	if _, err := os.Stat(cwd); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("working directory %s left behind: %v", cwd, err)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "patchbay-script-*"))
	if len(left) != 0 {
		t.Fatalf("left in TMPDIR: %v", left)
	}
}

// sleeper backgrounds a child, records both PIDs, then waits forever.
var sleeper = header("sleeper", "# param: pidfile string required") + `
sleep 300 &
echo "$$ $!" > "$PATCHBAY_PARAM_PIDFILE.tmp"
mv "$PATCHBAY_PARAM_PIDFILE.tmp" "$PATCHBAY_PARAM_PIDFILE"
echo started
sleep 300
`

func TestTimeoutKillsGroup(t *testing.T) {
	c := start(t, t.TempDir())
	att := attach(t, sleeper)
	pidfile := filepath.Join(t.TempDir(), "pids")
	began := time.Now()
	_, lines, err := sdktest.Fix(context.Background(), c, request(t, att, "sleeper", map[string]string{"pidfile": pidfile}, "timeout", "2s"))
	if err == nil || !strings.Contains(err.Error(), "timed out after 2s") {
		t.Fatalf("err = %v, lines %q", err, lines)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
	if len(lines) != 1 || lines[0] != "started" {
		t.Fatalf("lines %q", lines)
	}
	assertGone(t, pidfile)
}

func TestCancelKillsGroup(t *testing.T) {
	c := start(t, t.TempDir())
	att := attach(t, sleeper)
	pidfile := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := sdktest.Fix(ctx, c, request(t, att, "sleeper", map[string]string{"pidfile": pidfile}))
		done <- err
	}()
	waitFor(t, func() bool { _, err := os.Stat(pidfile); return err == nil })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled Fix succeeded")
	}
	assertGone(t, pidfile)
}

func TestDeadlineKillsGroup(t *testing.T) {
	c := start(t, t.TempDir())
	att := attach(t, sleeper)
	pidfile := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, _, err := sdktest.Fix(ctx, c, request(t, att, "sleeper", map[string]string{"pidfile": pidfile})); err == nil {
		t.Fatal("Fix past its deadline succeeded")
	}
	assertGone(t, pidfile)
}

// assertGone waits until both PIDs in pidfile have ended.
func assertGone(t *testing.T, pidfile string) {
	t.Helper()
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatalf("the script did not write its PIDs: %v", err)
	}
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 {
			t.Fatalf("pidfile %q", b)
		}
		waitFor(t, func() bool { return !alive(pid) })
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

func TestOutputCap(t *testing.T) {
	c := start(t, t.TempDir())
	att := attach(t, header("flood", "# param: pidfile string required")+`
echo "$$" > "$PATCHBAY_PARAM_PIDFILE"
yes 'a flood of output, line after line'
`)
	pidfile := filepath.Join(t.TempDir(), "pids")
	_, lines, err := sdktest.Fix(context.Background(), c, request(t, att, "flood", map[string]string{"pidfile": pidfile}, "max_output", "10000"))
	if err == nil || !strings.Contains(err.Error(), "output exceeded 10000 bytes") {
		t.Fatalf("err = %v", err)
	}
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	if n > 10000+1 || n < 9000 {
		t.Fatalf("received %d bytes of output in %d lines", n, len(lines))
	}
	assertGone(t, pidfile)
}

func TestAttachmentRefused(t *testing.T) {
	c := start(t, t.TempDir())
	marker := filepath.Join(t.TempDir(), "ran")
	script := header("touch", "# check: true", "# param: file string required") + `touch "$PATCHBAY_PARAM_FILE"` + "\n"
	tampered := attach(t, script)
	if err := os.WriteFile(tampered.Path, []byte(script+"echo extra\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := attach(t, script)
	tests := []struct {
		name string
		att  *sdk.Attachment
		want string
	}{
		{"tampered", tampered, "attachment sha256 is"},
		{"wrong hash", &sdk.Attachment{Path: good.Path, SHA256: strings.Repeat("0", 64)}, "not the verified"},
		{"missing", nil, "no script attached"},
		{"no path", &sdk.Attachment{SHA256: good.SHA256}, "no script attached"},
		{"gone", &sdk.Attachment{Path: good.Path + ".gone", SHA256: good.SHA256}, "read attachment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(t, tt.att, "touch", map[string]string{"file": marker})
			if _, _, err := sdktest.Fix(context.Background(), c, req); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("fix: err = %v, want %q", err, tt.want)
			}
			if _, err := c.Check(context.Background(), req); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("check: err = %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the script ran")
			}
		})
	}
}

func TestParams(t *testing.T) {
	c := start(t, t.TempDir())
	declared := attach(t, header("declared", "# param: x string required", "# param: n int default=3")+
		`echo "x=$PATCHBAY_PARAM_X n=$PATCHBAY_PARAM_N"`+"\n")
	free := attach(t, "#!/bin/sh\necho \"anything=$PATCHBAY_PARAM_ANYTHING\"\n")
	windowsOnly := attach(t, "# patchbay:begin\n# name: win\n# description: d\n# os: windows\n# shell: powershell\n# patchbay:end\nWrite-Host hi\n")
	tests := []struct {
		name     string
		att      *sdk.Attachment
		script   string
		args     string
		want     string // the output line, or the error
		wantFail bool
	}{
		{"declared", declared, "declared", `{"x":"1"}`, "x=1 n=3", false},
		{"declared all", declared, "declared", `{"x":"1","n":"7"}`, "x=1 n=7", false},
		{"undeclared", declared, "declared", `{"x":"1","rm":"-rf"}`, `unknown parameter "rm"`, true},
		{"required", declared, "declared", `{}`, `"x" is required`, true},
		{"wrong type", declared, "declared", `{"x":"1","n":"many"}`, "not an integer", true},
		{"free", free, "free", `{"anything":"goes"}`, "anything=goes", false},
		{"free bad name", free, "free", `{"Any":"x"}`, `parameter name "Any"`, true},
		{"not an object", free, "free", `["x"]`, "want a JSON object", true},
		{"number", free, "free", `{"x":1}`, `the value of "x" is a number`, true},
		{"null", free, "free", `{"x":null}`, "is null", true},
		{"nested", free, "free", `{"x":{"y":"z"}}`, "is an object", true},
		{"twice", free, "free", `{"x":"a","x":"b"}`, `"x" given twice`, true},
		{"trailing", free, "free", `{"x":"a"}{}`, "data after", true},
		{"broken", free, "free", `{"x":`, "args:", true},
		{"name mismatch", declared, "other", `{"x":"1"}`, `header calls it "declared"`, true},
		{"other os", windowsOnly, "win", `{}`, "does not support", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sdk.Request{Params: sdk.Params{"name": tt.script, "args": tt.args}, Attachment: tt.att}
			res, lines, err := sdktest.Fix(context.Background(), c, req)
			if tt.wantFail {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != 1 || lines[0] != tt.want || !res.Changed || res.Summary != tt.want {
				t.Fatalf("result %+v, output %q, want %q", res, lines, tt.want)
			}
		})
	}
	// The plugin's own parameters are checked too.
	for _, own := range [][]string{{"timeout", "0s"}, {"max_output", "0"}, {"timeout", "forever"}} {
		if _, _, err := sdktest.Fix(context.Background(), c, request(t, free, "free", nil, own...)); err == nil {
			t.Errorf("%s=%s accepted", own[0], own[1])
		}
	}
}

func TestCheck(t *testing.T) {
	c := start(t, t.TempDir())
	checkable := attach(t, header("checkable", "# check: true", "# param: code int required")+`
echo "mode=$PATCHBAY_MODE"
echo "deciding"
exit "$PATCHBAY_PARAM_CODE"
`)
	marker := filepath.Join(t.TempDir(), "ran")
	fixOnly := attach(t, header("fix-only", "# param: file string required")+`touch "$PATCHBAY_PARAM_FILE"`+"\n")
	tests := []struct {
		name    string
		req     sdk.Request
		needed  bool
		summary string
		wantErr string
	}{
		{"nothing to do", request(t, checkable, "checkable", map[string]string{"code": "0"}), false, "deciding", ""},
		{"fix needed", request(t, checkable, "checkable", map[string]string{"code": "10"}), true, "deciding", ""},
		{"error", request(t, checkable, "checkable", map[string]string{"code": "3"}), false, "", "check failed: exit code 3"},
		{"fix only", request(t, fixOnly, "fix-only", map[string]string{"file": marker}), true, "script fix-only would run", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Check(context.Background(), tt.req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "mode=check") {
					t.Fatalf("err = %v, want %q and the output", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Needed != tt.needed || res.Summary != tt.summary {
				t.Fatalf("check = %+v", res)
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("Check ran a fix-only script")
	}
	res, err := c.Check(context.Background(), request(t, checkable, "checkable", map[string]string{"code": "0"}))
	if err != nil || !strings.Contains(res.Details, "mode=check\ndeciding") {
		t.Fatalf("details %q, %v", res.Details, err)
	}
}

func TestFixResults(t *testing.T) {
	c := start(t, t.TempDir())
	att := attach(t, header("fixer", "# param: code int default=0", "# param: mark string default=none")+`
echo "mode=$PATCHBAY_MODE"
echo "to stderr" >&2
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "step $i"; done
case "$PATCHBAY_PARAM_MARK" in
unchanged) echo patchbay:unchanged ;;
reboot) echo "all done"; echo patchbay:reboot-required ;;
partial) printf 'no newline at the end' ;;
esac
exit "$PATCHBAY_PARAM_CODE"
`)
	tests := []struct {
		name, code, mark string
		changed, reboot  bool
		summary, wantErr string
	}{
		{"changed", "0", "none", true, false, "step 12", ""},
		{"unchanged", "0", "unchanged", false, false, "step 12", ""},
		{"reboot", "0", "reboot", true, true, "all done", ""},
		{"partial line", "0", "partial", true, false, "no newline at the end", ""},
		{"failed", "4", "none", false, false, "", "exit code 4; last output:\nstep 3\nstep 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, lines, err := sdktest.Fix(context.Background(), c, request(t, att, "fixer", map[string]string{"code": tt.code, "mark": tt.mark}))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "step 2\n") {
					t.Fatalf("err = %v, want %q (and only the last lines)", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Changed != tt.changed || res.RebootRequired != tt.reboot || res.Summary != tt.summary {
				t.Fatalf("result %+v", res)
			}
			if lines[0] != "mode=fix" || lines[1] != "to stderr" {
				t.Fatalf("output %q", lines)
			}
		})
	}
}

func TestBash(t *testing.T) {
	if _, err := lookPath("bash"); err != nil {
		testtool.Missing(t, "bash", "bash", err)
	}
	c := start(t, t.TempDir())
	att := attach(t, "#!/bin/sh\n# patchbay:begin\n# name: arrays\n# description: d\n# os: linux, darwin\n# shell: bash\n# patchbay:end\n"+
		"set -euo pipefail\na=(one two); echo \"${a[1]} ${BASH_VERSION%%.*}\"\n")
	res, _, err := sdktest.Fix(context.Background(), c, request(t, att, "arrays", nil))
	if err != nil || !strings.HasPrefix(res.Summary, "two ") {
		t.Fatalf("res %+v, %v", res, err)
	}
}

// TestLibraryDiskSpaceReport runs the read-only library script for real.
func TestLibraryDiskSpaceReport(t *testing.T) {
	data, err := os.ReadFile("../../scripts/disk-space-report.sh")
	if err != nil {
		t.Fatal(err)
	}
	c := start(t, t.TempDir())
	att := attach(t, string(data))
	dir := t.TempDir()
	for _, d := range []string{"big", "small"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "big", "blob"), make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	chk, err := c.Check(ctx, request(t, att, "disk-space-report", map[string]string{"path": dir}))
	if err != nil || !chk.Needed {
		t.Fatalf("check with the default threshold = %+v, %v", chk, err)
	}
	chk, err = c.Check(ctx, request(t, att, "disk-space-report", map[string]string{"path": dir, "threshold": "100"}))
	if err != nil || chk.Needed || !strings.Contains(chk.Summary, "% full") {
		t.Fatalf("check with threshold 100 = %+v, %v", chk, err)
	}
	res, lines, err := sdktest.Fix(ctx, c, request(t, att, "disk-space-report", map[string]string{"path": dir, "top": "5"}))
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	out := strings.Join(lines, "\n")
	if res.Changed || !strings.Contains(out, "Filesystem") || !strings.Contains(out, filepath.Join(dir, "big")) {
		t.Fatalf("result %+v\n%s", res, out)
	}
	if strings.Index(out, filepath.Join(dir, "big")) > strings.Index(out, filepath.Join(dir, "small")) {
		t.Fatalf("largest directory not first:\n%s", out)
	}
	if _, _, err := sdktest.Fix(ctx, c, request(t, att, "disk-space-report", map[string]string{"path": "relative"})); err == nil {
		t.Fatal("a relative path was accepted")
	}
}
