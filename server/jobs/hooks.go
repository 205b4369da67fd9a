package jobs

import (
	"time"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/schedule"
	"github.com/patchbay/patchbay/server/store"
)

// ResultSink hears of run results once they are stored: the plugin of the
// run's job, the agent and the result. Called on the dispatcher's writer
// goroutine (keep it short); only for runs this relay has in flight.
type ResultSink interface {
	RunStored(plugin, agentID string, res wire.RunResult)
}

// SetResultSink plugs in what hears of stored results (the pending
// updates of patchinstall runs); call it before Start.
func (d *Dispatcher) SetResultSink(s ResultSink) { d.sink = s }

// SetRebootCapable tells the dispatcher which agents understand a run's
// restart wish (wire.RunReboot): older agents decode run requests strictly
// and would refuse one that carries it. Call it before Start; without it
// no run carries the wish.
func (d *Dispatcher) SetRebootCapable(f func(agentID string) bool) { d.rebootOK = f }

// runRequest builds what the agent is sent: the job's run, with the job's
// restart wish for agents that understand it.
func (d *Dispatcher) runRequest(j store.Job, r store.Run) wire.RunRequest {
	req := runRequest(j, r)
	if j.Reboot == "" || d.rebootOK == nil || !d.rebootOK(r.AgentID) {
		return req
	}
	req.Reboot = &wire.RunReboot{Mode: j.Reboot}
	if j.Reboot == wire.RebootForceInWindow {
		req.Reboot.WindowEnd = windowEnd(j.Window, d.now())
	}
	return req
}

// windowEnd is when the job's window that is open at now closes; now when
// it is not open (or unreadable), so that a restart is not forced.
func windowEnd(window string, now time.Time) time.Time {
	w, err := schedule.ParseWindow(window)
	if err != nil || w == nil {
		return now.UTC()
	}
	if open, end := w.OpenAt(now); open {
		return end.UTC()
	}
	return now.UTC()
}
