package e2e

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAccessEndsWhenAUserIsDisabled: a person signed in with a password has
// a live `patchbay ssh`; an admin disables them: the session ends within a
// second with the reason, and their next request gets 401 (issue 15).
func TestAccessEndsWhenAUserIsDisabled(t *testing.T) {
	f := newSessionFleet(t)
	pw := strings.SplitN(f.admin.Run("users", "create", "erin", "--role", "technician"), "\n", 2)[0]
	erin := &CLI{t: t, env: []string{"PATCHBAY_CONFIG=" + filepath.Join(t.TempDir(), "erin.json")}}
	if _, errOut, err := tryIn(erin.env, pw+"\n", "login", "--server", f.r.URL, "--ca-fingerprint", f.r.FP,
		"--user", "erin", "--password-stdin"); err != nil {
		t.Fatalf("erin's login: %v %s", err, errOut)
	}

	cmd := exec.Command(bin("patchbay"), "ssh", f.agent.ID, "--reason", "INC-78 scanner", "--", "cat")
	cmd.Env = append(os.Environ(), erin.env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stdout, stderr logBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	io.WriteString(stdin, "typed-before-disable\n")
	waitFor(t, 30*time.Second, "the session to echo what erin typed", func() bool {
		return strings.Contains(stdout.String(), "typed-before-disable")
	})

	f.admin.Run("users", "disable", "erin")
	returned := time.Now()
	select {
	case err := <-done:
		d := time.Since(returned)
		t.Logf("patchbay ssh exited %v after users disable returned", d)
		if d > time.Second {
			t.Errorf("patchbay ssh exited %v after users disable returned, want under a second", d)
		}
		if err == nil {
			t.Error("patchbay ssh exited 0 after its user was disabled")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("patchbay ssh still runs 10 s after the user was disabled; stderr %q", stderr.String())
	}
	done <- nil // for the cleanup
	if !strings.Contains(stderr.String(), "access was revoked") {
		t.Errorf("erin was not told why: stderr %q", stderr.String())
	}
	if _, errOut, err := erin.Try("agents", "list"); err == nil || !strings.Contains(errOut, "401") && !strings.Contains(errOut, "expired or revoked") {
		t.Errorf("erin's next request: %v %q; want refused (401)", err, errOut)
	}
	var ended bool
	waitFor(t, 5*time.Second, "the session to be recorded as ended", func() bool {
		s := f.admin.sessions(t)[0]
		ended = s.State == "ended"
		return ended && strings.Contains(s.EndReason, "user erin was disabled by")
	})
}
