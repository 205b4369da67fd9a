//go:build unix

package consent

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// TestRebootJobWish: what a patch policy asks (never, force-in-window) is
// weighed against the endpoint's policy, through the real exec backend and
// restart program; only the logged-in users are a stand-in.
func TestRebootJobWish(t *testing.T) {
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen")
	script := writeScript(t, dir, "ask.sh", fmt.Sprintf("in=$(cat); echo \"$in\" >> %q\necho by=bob; echo choice=1h; exit 0\n", seen))
	prog, restarts := restartProgram(t)
	policy := func(reboot string) Policy {
		return Policy{Mode: ModePrompt, Backend: "exec:" + script, Timeout: 2 * time.Second, Reboot: reboot, RebootCommand: prog}
	}
	wish := func(c *Consent, mode string, end time.Time) RebootDecision {
		req := rebootRequest()
		req.JobReboot, req.WindowEnd = mode, end
		return c.DecideReboot(context.Background(), req)
	}
	open, closed := time.Now().Add(time.Hour), time.Now().Add(-time.Minute)

	for _, tc := range []struct {
		name     string
		policy   string
		users    func(context.Context) ([]string, error)
		mode     string
		end      time.Time
		choice   string
		by       string
		text     string // prefix of Text()
		asked    bool
		restarts bool
	}{
		{"force-in-window, nobody, window open: now", RebootAsk, nobody, wire.RebootForceInWindow, open,
			ChoiceNow, ByJob, "restart now: force-in-window, nobody logged in, window open until", false, true},
		{"force-in-window, nobody, window closed: no restart", RebootAsk, nobody, wire.RebootForceInWindow, closed,
			"", ByJob, "restart pending: force-in-window, but the window closed at", false, false},
		{"force-in-window, someone logged in: asked", RebootAsk, someone, wire.RebootForceInWindow, open,
			ChoiceHour, "bob", "restart: in 1 hour", true, true},
		{"force-in-window, endpoint policy never: no restart", RebootNever, nobody, wire.RebootForceInWindow, open,
			"", ByPolicy, "restart pending: policy never", false, false},
		{"force-in-window, cannot tell who is logged in: asked", RebootAsk,
			func(context.Context) ([]string, error) { return nil, fmt.Errorf("no utmp") }, wire.RebootForceInWindow, open,
			ChoiceHour, "bob", "restart: in 1 hour", true, true},
		{"job never, endpoint force: no restart", RebootForce, nobody, wire.RebootNever, time.Time{},
			"", ByJob, "restart pending: the job asks for no restart", false, false},
		{"job ask, nobody: now as before", RebootAsk, nobody, wire.RebootAsk, time.Time{},
			ChoiceNow, ByNoUser, "restart now: nobody logged in", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, policy(tc.policy), nil, options{loggedIn: tc.users})
			asked, ran := len(readLines(t, seen)), len(readLines(t, restarts))
			d := wish(c, tc.mode, tc.end)
			if d.Choice != tc.choice || d.By != tc.by || !strings.HasPrefix(d.Text(), tc.text) {
				t.Fatalf("decision = %+v (%s)", d, d.Text())
			}
			if got := len(readLines(t, seen)) > asked; got != tc.asked {
				t.Errorf("asked = %v, want %v", got, tc.asked)
			}
			if err := c.ScheduleReboot(context.Background(), d); err != nil {
				t.Fatal(err)
			}
			if got := len(readLines(t, restarts)) > ran; got != tc.restarts {
				t.Errorf("restart program ran = %v, want %v", got, tc.restarts)
			}
		})
	}
}
