package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/agent/journal"
	"github.com/patchbay/patchbay/agent/runner"
	"github.com/patchbay/patchbay/internal/wire"
)

// These tests run a fix that requires a restart through the worker, the
// real runner and the real testplugin subprocess (TESTPLUGIN_REBOOT), with a
// real consent.Consent whose exec program answers the restart question and
// whose reboot_command is a script that records its arguments (so nothing
// restarts the test machine). Only the list of logged-in users is given
// (consent.WithLoggedIn): a test cannot log a user in.

// rebootAgent is a worker whose policy decides restarts.
type rebootAgent struct {
	*consentAgent
	restarts string // the reboot_command appends its arguments here
}

// rebootSetup configures startRebootAgent.
type rebootSetup struct {
	reboot  string // the policy's reboot
	present bool   // a user is logged in
	answer  string // the exec program's stdout to a restart question ("" answers nothing, exit 1)
	plugin  string // TESTPLUGIN_REBOOT: "1" (default) or "undeclared"
	timeout time.Duration
}

func startRebootAgent(t *testing.T, rig *consentRig, s rebootSetup) *rebootAgent {
	t.Helper()
	dir := t.TempDir()
	a := &rebootAgent{consentAgent: &consentAgent{out: &results{ch: make(chan wire.RunResult, 16)}, asked: filepath.Join(dir, "asked")},
		restarts: filepath.Join(dir, "restarts")}
	answer := "exit 1"
	if s.answer != "" {
		answer = fmt.Sprintf("printf '%%s\\n' %s; exit 0", s.answer)
	}
	ask := writeProg(t, dir, "ask.sh", fmt.Sprintf("#!/bin/sh\nin=$(cat)\necho \"$in\" >> %q\n%s\n", a.asked, answer))
	restart := writeProg(t, dir, "restart.sh", fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %q\n", a.restarts))
	timeout := s.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	present := func(context.Context) ([]string, error) { return nil, nil }
	if s.present {
		present = func(context.Context) ([]string, error) { return []string{"bob"}, nil }
	}
	cons, err := consent.New(consent.Policy{Mode: consent.ModePrompt, Backend: "exec:" + ask, Timeout: timeout,
		Reboot: s.reboot, RebootCommand: restart}, nil, zerolog.Nop(), consent.WithLoggedIn(present))
	if err != nil {
		t.Fatal(err)
	}
	plugin := s.plugin
	if plugin == "" {
		plugin = "1"
	}
	r, err := runner.New(runner.Config{
		Dir: filepath.Join(dir, "runner"), Fetch: rig.cat,
		Env:   []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "TMPDIR=" + os.TempDir(), "TESTPLUGIN_REBOOT=" + plugin},
		Trust: func() (runner.Trust, error) { return runner.LoadTrust(rig.trust) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.j, err = journal.Open(filepath.Join(dir, "journal")); err != nil {
		t.Fatal(err)
	}
	cert, _ := agentCert(t)
	a.w = New(Config{Journal: a.j, Runner: r, Consent: cons, AgentID: testAgentID, Hostname: "pc-042", Cert: cert,
		Send: a.out.send, Log: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
		r.Close()
		cons.Close()
	})
	return a
}

func writeProg(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// restartRuns returns the reboot_command's runs, one line of arguments each.
func (a *rebootAgent) restartRuns(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(a.restarts)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// lastLine is the last line of a result's details: the restart outcome.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestFixReboot(t *testing.T) {
	rig := newConsentRig(t)
	run := func(t *testing.T, a *rebootAgent) (wire.RunRequest, wire.RunResult) {
		t.Helper()
		req := rig.req(rig.testplugin, nil)
		res := a.run(t, req)
		if res.State != wire.StateSucceeded || !res.RebootRequired {
			t.Fatalf("result = %+v", res)
		}
		return req, res
	}

	t.Run("ask: the user chooses tonight; restarted once, redelivery asks nothing", func(t *testing.T) {
		a := startRebootAgent(t, rig, rebootSetup{reboot: consent.RebootAsk, present: true, answer: "by=bob choice=tonight"})
		req, res := run(t, a)
		if got := lastLine(res.Details); got != "restart: tonight at 22:00, chosen by bob" {
			t.Fatalf("details end %q", got)
		}
		asks := a.asks(t)
		if len(asks) != 1 || !strings.Contains(asks[0], `"kind":"reboot"`) || !strings.Contains(asks[0], "plugin testplugin 1.0.0") ||
			!strings.Contains(asks[0], "bob@helpdesk") {
			t.Fatalf("asked %q", asks)
		}
		runs := a.restartRuns(t)
		if len(runs) != 1 || !strings.HasPrefix(runs[0], "tonight ") {
			t.Fatalf("restart command runs %q", runs)
		}
		// Journaled before the command ran.
		if e, ok, err := a.j.Get(req.RunID); err != nil || !ok || e.Reboot == nil || e.Reboot.Choice != consent.ChoiceTonight || e.Reboot.By != "bob" {
			t.Fatalf("journal = %+v %v %v", e.Reboot, ok, err)
		}
		again := a.run(t, req)
		if lastLine(again.Details) != lastLine(res.Details) || len(a.asks(t)) != 1 || len(a.restartRuns(t)) != 1 {
			t.Fatalf("after redelivery: %q, asked %d times, restarted %d times", again.Details, len(a.asks(t)), len(a.restartRuns(t)))
		}
	})

	t.Run("ask with nobody logged in: restart now, nobody asked", func(t *testing.T) {
		a := startRebootAgent(t, rig, rebootSetup{reboot: consent.RebootAsk, answer: "choice=tonight"})
		_, res := run(t, a)
		if got := lastLine(res.Details); got != "restart now: nobody logged in" {
			t.Fatalf("details end %q", got)
		}
		if runs := a.restartRuns(t); len(runs) != 1 || !strings.HasPrefix(runs[0], "now 0 ") || len(a.asks(t)) != 0 {
			t.Fatalf("restart runs %q, asked %d", runs, len(a.asks(t)))
		}
	})

	t.Run("never: nothing runs, the restart is pending", func(t *testing.T) {
		a := startRebootAgent(t, rig, rebootSetup{reboot: consent.RebootNever, answer: "choice=now"})
		_, res := run(t, a)
		if got := lastLine(res.Details); !strings.HasPrefix(got, "restart pending: policy never") {
			t.Fatalf("details end %q", got)
		}
		if len(a.restartRuns(t)) != 0 || len(a.asks(t)) != 0 {
			t.Fatal("policy never asked or restarted")
		}
	})

	t.Run("force: restarts now with a user logged in, after telling them", func(t *testing.T) {
		a := startRebootAgent(t, rig, rebootSetup{reboot: consent.RebootForce, present: true, answer: "choice=tonight"})
		_, res := run(t, a)
		if got := lastLine(res.Details); got != "restart now: policy force, bob logged in and told" {
			t.Fatalf("details end %q", got)
		}
		asks := a.asks(t)
		if runs := a.restartRuns(t); len(runs) != 1 || !strings.HasPrefix(runs[0], "now 0 ") {
			t.Fatalf("restart runs %q", runs)
		}
		if len(asks) != 1 || !strings.Contains(asks[0], `"event":"reboot"`) {
			t.Fatalf("the user was not told (or was asked): %q", asks)
		}
	})

	t.Run("ask with a user logged in is never now without their choice", func(t *testing.T) {
		// No answer: the program refuses, then one that never answers in time.
		for _, s := range []rebootSetup{
			{reboot: consent.RebootAsk, present: true},
			{reboot: consent.RebootAsk, present: true, answer: "choice=maybe"},
		} {
			a := startRebootAgent(t, rig, s)
			_, res := run(t, a)
			if got := lastLine(res.Details); !strings.HasPrefix(got, "restart: tonight at 22:00, ") {
				t.Fatalf("%+v: details end %q", s, got)
			}
			if runs := a.restartRuns(t); len(runs) != 1 || !strings.HasPrefix(runs[0], "tonight ") {
				t.Fatalf("%+v: restart runs %q", s, runs)
			}
		}
	})

	t.Run("no answer in time: tonight", func(t *testing.T) {
		a := startRebootAgent(t, rig, rebootSetup{reboot: consent.RebootAsk, present: true, answer: "x; exec sleep 30", timeout: time.Second})
		_, res := run(t, a)
		if got := lastLine(res.Details); !strings.HasPrefix(got, "restart: tonight at 22:00, no answer within 1s") {
			t.Fatalf("details end %q", got)
		}
		if runs := a.restartRuns(t); len(runs) != 1 || !strings.HasPrefix(runs[0], "tonight ") {
			t.Fatalf("restart runs %q", runs)
		}
	})

	t.Run("a fix that does not declare may_reboot never restarts", func(t *testing.T) {
		a := startRebootAgent(t, rig, rebootSetup{reboot: consent.RebootForce, plugin: "undeclared"})
		_, res := run(t, a)
		if got := lastLine(res.Details); !strings.Contains(got, "does not declare may_reboot") {
			t.Fatalf("details end %q", got)
		}
		if len(a.restartRuns(t)) != 0 || len(a.asks(t)) != 0 {
			t.Fatal("an undeclared restart ran")
		}
	})
}
