package worker

import (
	"context"
	"time"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/agent/runner"
	"github.com/patchbay/patchbay/internal/wire"
)

// gate returns the runner's consent gate for req: it asks the person at the
// machine (through the endpoint's policy) whether the fix may run, and
// journals the decision before returning it, so that the decision survives
// an agent that stops during the fix and nobody is asked twice for a run.
func (w *Worker) gate(req wire.RunRequest) runner.Gate {
	return func(ctx context.Context, fix runner.Fix) wire.RunConsent {
		if e, ok, err := w.journal.Get(req.RunID); err == nil && ok && e.Consent != nil {
			return *e.Consent // decided already: the first decision stands
		}
		c := w.decide(ctx, req, fix)
		log := w.log.With().Str("run_id", req.RunID).Str("job_id", req.JobID).Logger()
		if err := w.journal.Consent(req.RunID, c, time.Now().UTC()); err != nil {
			log.Error().Err(err).Msg("journal consent")
			if c.Approved {
				// An approval that cannot be recorded does not run the fix:
				// after a restart nobody could tell it was given.
				c.Approved = false
				c.Message = truncate("approved, but the agent could not record the decision, so the fix did not run: "+err.Error(), 1024)
			}
		}
		log.Info().Bool("approved", c.Approved).Str("by", c.By).Str("decision", c.Message).Str("fix", fix.String()).
			Msg("fix consent decision")
		return c
	}
}

// decide asks the endpoint's consent policy about fix.
func (w *Worker) decide(ctx context.Context, req wire.RunRequest, fix runner.Fix) wire.RunConsent {
	if w.ask == nil {
		return wire.RunConsent{By: consent.ByAgent, Message: "this agent has no consent policy to ask with", At: time.Now().UTC()}
	}
	creq := consent.Request{
		Kind:       consent.KindFix,
		Fix:        fix.String(),
		SessionID:  req.RunID,
		AgentID:    w.agentID,
		Hostname:   w.hostname,
		Technician: req.Requester,
		Reason:     req.Reason,
	}
	if dl, ok := ctx.Deadline(); ok {
		creq.Deadline = dl // the run's own deadline, when it comes before the policy's timeout
	}
	d := w.ask.Decide(ctx, creq)
	at := d.At
	if at.IsZero() {
		at = time.Now()
	}
	return wire.RunConsent{
		Approved: d.Approved, By: truncate(d.By, 128), Message: truncate(d.Message, 1024), Mode: truncate(string(d.Mode), 32),
		At: at.UTC(),
	}
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
