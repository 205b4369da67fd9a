package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/internal/wire"
)

// A patch policy's restart wish reaches the decision through the worker:
// force-in-window restarts at once with nobody logged in while the window
// is open, and is journaled; once the window has closed it restarts
// nothing; a user logged in is asked as the endpoint's policy says.
func TestFixRebootJobWish(t *testing.T) {
	rig := newConsentRig(t)
	run := func(t *testing.T, a *rebootAgent, rb *wire.RunReboot) (wire.RunRequest, wire.RunResult) {
		t.Helper()
		req := rig.req(rig.testplugin, nil)
		req.Reboot = rb
		res := a.run(t, req)
		if res.State != wire.StateSucceeded || !res.RebootRequired {
			t.Fatalf("result = %+v", res)
		}
		return req, res
	}
	open := &wire.RunReboot{Mode: wire.RebootForceInWindow, WindowEnd: time.Now().Add(time.Hour)}

	t.Run("force-in-window, nobody logged in, window open: restart now, journaled", func(t *testing.T) {
		a := startRebootAgent(t, rig, rebootSetup{reboot: consent.RebootAsk, answer: "choice=tonight"})
		req, res := run(t, a, open)
		if got := lastLine(res.Details); !strings.HasPrefix(got, "restart now: force-in-window, nobody logged in, window open until ") {
			t.Fatalf("details end %q", got)
		}
		if runs := a.restartRuns(t); len(runs) != 1 || !strings.HasPrefix(runs[0], "now 0 ") || len(a.asks(t)) != 0 {
			t.Fatalf("restart runs %q, asked %d", runs, len(a.asks(t)))
		}
		if e, ok, err := a.j.Get(req.RunID); err != nil || !ok || e.Reboot == nil || e.Reboot.Choice != consent.ChoiceNow || e.Reboot.By != consent.ByJob {
			t.Fatalf("journal = %+v %v %v", e.Reboot, ok, err)
		}
	})

	t.Run("force-in-window after the window closed: no restart", func(t *testing.T) {
		a := startRebootAgent(t, rig, rebootSetup{reboot: consent.RebootAsk, answer: "choice=now"})
		_, res := run(t, a, &wire.RunReboot{Mode: wire.RebootForceInWindow, WindowEnd: time.Now().Add(-time.Minute)})
		if got := lastLine(res.Details); !strings.HasPrefix(got, "restart pending: force-in-window, but the window closed at ") {
			t.Fatalf("details end %q", got)
		}
		if len(a.restartRuns(t)) != 0 || len(a.asks(t)) != 0 {
			t.Fatal("restarted or asked after the window closed")
		}
	})

	t.Run("force-in-window with a user logged in: asked", func(t *testing.T) {
		a := startRebootAgent(t, rig, rebootSetup{reboot: consent.RebootAsk, present: true, answer: "by=bob choice=tonight"})
		_, res := run(t, a, open)
		if got := lastLine(res.Details); got != "restart: tonight at 22:00, chosen by bob" || len(a.asks(t)) != 1 {
			t.Fatalf("details end %q, asked %d", got, len(a.asks(t)))
		}
	})

	t.Run("endpoint policy never wins over force-in-window", func(t *testing.T) {
		a := startRebootAgent(t, rig, rebootSetup{reboot: consent.RebootNever})
		_, res := run(t, a, open)
		if got := lastLine(res.Details); !strings.HasPrefix(got, "restart pending: policy never") || len(a.restartRuns(t)) != 0 {
			t.Fatalf("details end %q, restarts %q", got, a.restartRuns(t))
		}
	})

	t.Run("job never: no restart under force", func(t *testing.T) {
		a := startRebootAgent(t, rig, rebootSetup{reboot: consent.RebootForce, present: true})
		_, res := run(t, a, &wire.RunReboot{Mode: wire.RebootNever})
		if got := lastLine(res.Details); !strings.HasPrefix(got, "restart pending: the job asks for no restart") || len(a.restartRuns(t)) != 0 {
			t.Fatalf("details end %q, restarts %q", got, a.restartRuns(t))
		}
	})
}
