//go:build unix

package consent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func execPolicy(mode Mode, script string) Policy {
	return Policy{Mode: mode, Backend: "exec:" + script, Timeout: 30 * time.Second}
}

func TestExecApproveSeesRequest(t *testing.T) {
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen.json")
	script := writeScript(t, dir, "ask.sh", fmt.Sprintf("cat > %q\necho by=alice.local\nexit 0\n", seen))
	c := start(t, execPolicy(ModePrompt, script), nil, options{})
	deadline := time.Now().Add(20 * time.Second).Truncate(time.Second)
	req := testRequest("7f0c1e9e-2f4b-4c43-9d7e-3f6a2b1c0d01", "bob@helpdesk", "ticket INC-1234: printer jam", deadline)

	d := c.Decide(context.Background(), req)
	if !d.Approved || d.By != "alice.local" || d.Backend != "exec" || d.Mode != ModePrompt || d.At.IsZero() {
		t.Fatalf("decision = %+v, want approved by alice.local through exec", d)
	}
	b, err := os.ReadFile(seen)
	if err != nil {
		t.Fatal(err)
	}
	var m execMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("the program got %q: %v", b, err)
	}
	if m.Event != "request" || m.Technician != "bob@helpdesk" || m.Reason != "ticket INC-1234: printer jam" ||
		m.SessionID != req.SessionID || m.AgentID != req.AgentID || m.Hostname != "desk-42" {
		t.Errorf("the program got %s", b)
	}
	if strings.Join(m.Capabilities, ",") != "shell,sftp" || m.CapabilityText["sftp"] != "copy files to and from this machine" {
		t.Errorf("capabilities = %v, %v", m.Capabilities, m.CapabilityText)
	}
	if exp, err := time.Parse(time.RFC3339, m.Expires); err != nil || !exp.Equal(deadline) {
		t.Errorf("expires = %q (%v), want %s", m.Expires, err, deadline.UTC().Format(time.RFC3339))
	}
}

func TestExecDeny(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name, body, want string
	}{
		{"stderr line", "cat >/dev/null\necho '  not now, I am presenting  ' >&2\necho second line >&2\nexit 1\n", "not now, I am presenting"},
		{"no stderr", "cat >/dev/null\nexit 3\n", "denied by SCRIPT (exit 3)"},
		{"long stderr", "cat >/dev/null\necho " + long + " >&2\nexit 1\n", long[:200]},
		{"stdin ignored", "echo busy >&2\nexit 2\n", "busy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := writeScript(t, t.TempDir(), "ask.sh", tt.body)
			c := start(t, execPolicy(ModePrompt, script), nil, options{})
			d := c.Decide(context.Background(), testRequest("s-1", "bob", "why", time.Time{}))
			want := strings.ReplaceAll(tt.want, "SCRIPT", script)
			if d.Approved || d.Message != want || d.By != currentUser() {
				t.Errorf("decision = %+v, want denied by %s with message %q", d, currentUser(), want)
			}
		})
	}
}

// The program is killed at the deadline, with the child it started.
func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	script := writeScript(t, dir, "slow.sh", fmt.Sprintf("cat >/dev/null\nsleep 30 &\necho $$ $! > %q\nwait\n", pids))
	c := start(t, execPolicy(ModePrompt, script), nil, options{})

	began := time.Now()
	d := c.Decide(context.Background(), testRequest("s-2", "bob", "why", time.Now().Add(time.Second)))
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Decide took %s with a 1s deadline", took)
	}
	if d.Approved || d.By != ByTimeout || d.Message != "no answer within 1s" {
		t.Errorf("decision = %+v, want denied by timeout, \"no answer within 1s\"", d)
	}
	b, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "process "+f+" to be gone", 5*time.Second, func() bool { return gone(pid) })
	}
}

// gone reports whether pid no longer runs (a zombie waiting for a reaper
// that is not ours counts as gone).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z")
}

func TestExecUnattendedRunsNothing(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	script := writeScript(t, dir, "ask.sh", fmt.Sprintf("touch %q\nexit 1\n", ran))
	c := start(t, execPolicy(ModeUnattended, script), nil, options{})
	d := c.Decide(context.Background(), testRequest("s-3", "bob", "why", time.Time{}))
	if !d.Approved || d.By != ByPolicy || d.Mode != ModeUnattended || d.Backend != "" {
		t.Errorf("decision = %+v, want approved by policy, no backend", d)
	}
	c.Started(Live{ID: "s-3", Technician: "bob"})
	c.Ended("s-3", "technician left")
	if c.URL() != "" {
		t.Errorf("URL = %q in unattended mode", c.URL())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ran); !os.IsNotExist(err) {
		t.Errorf("the program ran in unattended mode (stat: %v)", err)
	}
}

func TestExecNotifyEvents(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	// Exits 1: the status of an event is ignored.
	script := writeScript(t, dir, "tell.sh", fmt.Sprintf("cat >> %q\necho >> %q\nexit 1\n", events, events))
	c := start(t, execPolicy(ModeNotify, script), nil, options{})

	req := testRequest("5d6c1f7a-0000-4000-8000-000000000003", "bob", "ticket 9", time.Time{})
	d := c.Decide(context.Background(), req)
	if !d.Approved || d.By != ByPolicy || d.Backend != "exec" || d.Mode != ModeNotify {
		t.Fatalf("decision = %+v, want approved by policy through exec", d)
	}
	if fileContains(events, "") {
		t.Fatal("the program was asked about a request in notify mode")
	}
	c.Started(Live{ID: req.SessionID, Technician: "bob", Reason: "ticket 9", Capabilities: []string{"shell"}, Started: time.Now()})
	waitFor(t, "the started event", 5*time.Second, func() bool { return fileContains(events, `"event":"started"`) })
	c.Ended(req.SessionID, "technician left")
	waitFor(t, "the ended event", 5*time.Second, func() bool { return fileContains(events, `"event":"ended"`) })

	b, _ := os.ReadFile(events)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("events = %q, want two lines", b)
	}
	var started, ended execMessage
	if err := json.Unmarshal([]byte(lines[0]), &started); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &ended); err != nil {
		t.Fatal(err)
	}
	if started.Event != "started" || started.SessionID != req.SessionID || started.Technician != "bob" ||
		started.Reason != "ticket 9" || started.AgentID != req.AgentID || started.Started == "" ||
		started.CapabilityText["shell"] != "open an interactive shell" {
		t.Errorf("started event = %s", lines[0])
	}
	if ended.Event != "ended" || ended.EndReason != "technician left" || ended.Technician != "bob" {
		t.Errorf("ended event = %s", lines[1])
	}
}

// Several requests pending at once each get their own answer.
func TestExecConcurrentRequests(t *testing.T) {
	script := writeScript(t, t.TempDir(), "ask.sh", `in=$(cat)
sleep 0.3
case "$in" in
*'"technician":"alice"'*) exit 0 ;;
esac
echo "only alice" >&2
exit 1
`)
	c := start(t, execPolicy(ModePrompt, script), nil, options{})
	var wg sync.WaitGroup
	for i := range 8 {
		tech := []string{"alice", "mallory"}[i%2]
		wg.Go(func() {
			d := c.Decide(context.Background(), testRequest(fmt.Sprintf("s-%d", i), tech, "why", time.Time{}))
			if d.Approved != (tech == "alice") {
				t.Errorf("request %d by %s: %+v", i, tech, d)
			}
		})
	}
	wg.Wait()
}

func TestExecDuplicatePendingRequest(t *testing.T) {
	script := writeScript(t, t.TempDir(), "ask.sh", "cat >/dev/null\nsleep 30\n")
	c := start(t, execPolicy(ModePrompt, script), nil, options{})
	req := testRequest("dup", "bob", "why", time.Now().Add(2*time.Second))
	first := decideAsync(context.Background(), c, req)
	waitFor(t, "the first request to be pending", 5*time.Second, func() bool { return len(c.snapshot().pending) == 1 })
	d := c.Decide(context.Background(), req)
	if d.Approved || d.By != ByAgent || !strings.Contains(d.Message, "already pending") {
		t.Errorf("second decision = %+v", d)
	}
	if d := await(t, first, 10*time.Second); d.By != ByTimeout {
		t.Errorf("first decision = %+v, want timeout", d)
	}
}

func TestExecContextCancelDenies(t *testing.T) {
	script := writeScript(t, t.TempDir(), "ask.sh", "cat >/dev/null\nsleep 30\n")
	c := start(t, execPolicy(ModePrompt, script), nil, options{})
	ctx, cancel := context.WithCancel(context.Background())
	ch := decideAsync(ctx, c, testRequest("s-c", "bob", "why", time.Time{}))
	time.Sleep(200 * time.Millisecond)
	cancel()
	d := await(t, ch, 5*time.Second)
	if d.Approved || d.By != ByAgent || !strings.Contains(d.Message, "withdrawn") {
		t.Errorf("decision = %+v, want denied by agent, withdrawn", d)
	}
}

func TestExecCloseDeniesPending(t *testing.T) {
	script := writeScript(t, t.TempDir(), "ask.sh", "cat >/dev/null\nsleep 30\n")
	c, err := newConsent(execPolicy(ModePrompt, script), nil, testLogger(t), options{})
	if err != nil {
		t.Fatal(err)
	}
	ch := decideAsync(context.Background(), c, testRequest("s-x", "bob", "why", time.Time{}))
	waitFor(t, "the request to be pending", 5*time.Second, func() bool { return len(c.snapshot().pending) == 1 })
	began := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Close took %s", took)
	}
	d := await(t, ch, 5*time.Second)
	if d.Approved || d.By != ByAgent || !strings.Contains(d.Message, "shutting down") {
		t.Errorf("decision = %+v", d)
	}
	if d := c.Decide(context.Background(), testRequest("s-y", "bob", "why", time.Time{})); d.Approved {
		t.Errorf("Decide after Close approved: %+v", d)
	}
}

func TestExecProgramProblems(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(execPolicy(ModePrompt, filepath.Join(dir, "missing")), nil, testLogger(t)); err == nil ||
		!strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing program: %v", err)
	}
	plain := filepath.Join(dir, "plain")
	writeFile(t, plain, "#!/bin/sh\nexit 0\n", 0o600)
	if _, err := New(execPolicy(ModePrompt, plain), nil, testLogger(t)); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Errorf("non-executable program: %v", err)
	}
	open := filepath.Join(dir, "open")
	writeFile(t, open, "#!/bin/sh\nexit 0\n", 0o777)
	if _, err := New(execPolicy(ModePrompt, open), nil, testLogger(t)); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("world-writable program: %v", err)
	}

	// A program that disappears after New: denied by the agent, with the reason.
	script := writeScript(t, dir, "ask.sh", "exit 0\n")
	c := start(t, execPolicy(ModePrompt, script), nil, options{})
	if err := os.Remove(script); err != nil {
		t.Fatal(err)
	}
	d := c.Decide(context.Background(), testRequest("s-z", "bob", "why", time.Time{}))
	if d.Approved || d.By != ByAgent || !strings.Contains(d.Message, "could not run") {
		t.Errorf("decision = %+v", d)
	}
}

// Control and bidirectional-override characters never reach the program.
func TestExecRequestTextIsCleaned(t *testing.T) {
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen.json")
	script := writeScript(t, dir, "ask.sh", fmt.Sprintf("cat > %q\n", seen))
	c := start(t, execPolicy(ModePrompt, script), nil, options{})
	c.Decide(context.Background(), testRequest("s-t", "bob", "fix\x1b[2J printer \u202egnp.exe\nnow", time.Time{}))
	var m execMessage
	b, _ := os.ReadFile(seen)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if want := "fix\uFFFD[2J printer \uFFFDgnp.exe now"; m.Reason != want {
		t.Errorf("reason = %q, want %q", m.Reason, want)
	}
}

// writeScript writes an executable shell script (mode 0700) into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	writeFile(t, path, "#!/bin/sh\n"+body, 0o700)
	return path
}

// fileContains reports whether path exists and holds sub.
func fileContains(path, sub string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), sub)
}
