package e2e

import (
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

	live := startLiveSSH(t, erin, f.agent.ID, "INC-78 scanner")
	f.admin.Run("users", "disable", "erin")
	live.endsWithin(t, time.Second, "access was revoked")
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
