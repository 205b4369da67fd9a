package worker

import (
	"context"
	"time"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/agent/journal"
	"github.com/patchbay/patchbay/agent/runner"
	"github.com/patchbay/patchbay/internal/wire"
)

// Rebooter decides and schedules the restart a fix requires, by the
// endpoint's own policy; *consent.Consent is one. The worker uses it when
// Config.Consent implements it.
type Rebooter interface {
	DecideReboot(ctx context.Context, req consent.Request) consent.RebootDecision
	ScheduleReboot(ctx context.Context, d consent.RebootDecision) error
}

// rebootGate returns the runner's restart hook for req: after a fix that
// may reboot said reboot_required, it decides by the policy (asking the
// user when the policy says so), journals the decision with the result so
// far, and only then runs the restart command. A restart that cannot be
// journaled is not scheduled: after a restart nobody could tell it was
// decided, and a redelivered run must never restart the machine twice.
func (w *Worker) rebootGate(req wire.RunRequest) runner.RebootGate {
	return func(ctx context.Context, fix runner.Fix, res wire.RunResult) string {
		log := w.log.With().Str("run_id", req.RunID).Str("job_id", req.JobID).Str("fix", fix.Short()).Logger()
		if e, ok, err := w.journal.Get(req.RunID); err == nil && ok && e.Reboot != nil {
			return e.Reboot.Text // decided already: the first decision stands, and is not carried out again
		}
		rb, ok := w.ask.(Rebooter)
		if !ok {
			return "restart pending: this agent has no restart policy"
		}
		creq := consent.Request{
			Kind: consent.KindReboot, Fix: fix.String(), SessionID: req.RunID, AgentID: w.agentID,
			Hostname: w.hostname, Technician: req.Requester, Reason: req.Reason,
		}
		if req.Reboot != nil {
			creq.JobReboot, creq.WindowEnd = req.Reboot.Mode, req.Reboot.WindowEnd
		}
		d := rb.DecideReboot(ctx, creq)
		text := clip(d.Text(), 1000)
		pending := res
		pending.Details = addDetail(res.Details, text)
		rec := journal.Reboot{Choice: d.Choice, By: d.By, Text: text, At: d.At.UTC(), When: d.When.UTC(), Result: pending}
		got, err := w.journal.Reboot(req.RunID, rec, time.Now().UTC())
		switch {
		case err != nil:
			log.Error().Err(err).Msg("journal restart decision")
			return clip("restart pending: the agent could not record the decision ("+d.Text()+"), so it did not restart: "+err.Error(), 1000)
		case got.Text != rec.Text || !got.At.Equal(rec.At):
			return got.Text // another decision was recorded first
		}
		if d.Choice == "" {
			log.Info().Str("restart", text).Msg("restart decision")
			return text
		}
		if err := rb.ScheduleReboot(ctx, d); err != nil {
			log.Error().Err(err).Msg("restart command")
			return clip("restart not scheduled ("+d.Text()+"): "+err.Error(), 1000)
		}
		log.Info().Str("restart", text).Msg("restart scheduled")
		return text
	}
}

// addDetail is the runner's rule for the line it adds to details.
func addDetail(details, line string) string {
	if details == "" {
		return line
	}
	const maxDetails = 64 << 10
	for len(details) > 0 && details[len(details)-1] == '\n' {
		details = details[:len(details)-1]
	}
	if room := maxDetails - len(line) - 1; len(details) > room {
		details = clip(details, max(room, 0))
	}
	return details + "\n" + line
}
