package jobs

import (
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/schedule"
	"github.com/patchbay/patchbay/server/store"
)

// A job's restart wish goes only to agents that take it, and
// force-in-window carries the end of the window open now (now itself when
// it is closed, so that the agent forces nothing).
func TestRunRequestRebootWish(t *testing.T) {
	now := time.Date(2026, 12, 5, 2, 30, 0, 0, time.UTC)
	w, err := schedule.NewWindow("night", "site", "0 2 * * *", "UTC", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	capable := map[string]bool{"new": true}
	d := &Dispatcher{now: func() time.Time { return now }, rebootOK: func(id string) bool { return capable[id] }}
	j := store.Job{ID: "0193a1b2-0000-7000-8000-000000000001", Plugin: "patchinstall", Window: w.JSON(), Reboot: wire.RebootForceInWindow}
	run := func(agent string) *wire.RunReboot {
		return d.runRequest(j, store.Run{ID: j.ID, AgentID: agent}).Reboot
	}
	if rb := run("new"); rb == nil || rb.Mode != wire.RebootForceInWindow || !rb.WindowEnd.Equal(now.Truncate(24*time.Hour).Add(4*time.Hour)) {
		t.Fatalf("open window: %+v", rb)
	}
	if rb := run("old"); rb != nil {
		t.Fatalf("an agent that does not take it got %+v", rb)
	}
	now = now.Add(3 * time.Hour) // 05:30: closed
	if rb := run("new"); rb == nil || !rb.WindowEnd.Equal(now) {
		t.Fatalf("closed window: %+v", rb)
	}
	j.Reboot = ""
	if rb := run("new"); rb != nil {
		t.Fatalf("a job without a wish: %+v", rb)
	}
	j.Reboot, j.Window = wire.RebootNever, ""
	if rb := run("new"); rb == nil || rb.Mode != wire.RebootNever || !rb.WindowEnd.IsZero() {
		t.Fatalf("never: %+v", rb)
	}
}
