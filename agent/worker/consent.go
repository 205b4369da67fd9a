package worker

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/agent/runner"
	"github.com/patchbay/patchbay/internal/receipt"
	"github.com/patchbay/patchbay/internal/wire"
)

// gate returns the runner's consent gate for req: it asks the person at the
// machine (through the endpoint's policy) whether the fix may run, signs the
// decision with the agent's key and journals it before returning it, so
// that the decision survives an agent that stops during the fix and nobody
// is asked twice for a run.
func (w *Worker) gate(req wire.RunRequest) runner.Gate {
	return func(ctx context.Context, fix runner.Fix) wire.RunConsent {
		if e, ok, err := w.journal.Get(req.RunID); err == nil && ok && e.Consent != nil {
			return *e.Consent // decided already: the first decision stands
		}
		log := w.log.With().Str("run_id", req.RunID).Str("job_id", req.JobID).Logger()
		c := w.decide(ctx, req, fix)
		signed, err := w.sign(req, fix, c)
		if err != nil {
			log.Error().Err(err).Msg("sign fix consent receipt")
			c = refuse(c, "the agent could not sign the decision, so the fix did not run: "+err.Error())
			if signed, err = w.sign(req, fix, c); err != nil {
				signed = nil // the relay records the decision without a receipt
			}
		}
		c.Receipt = signed
		if err := w.journal.Consent(req.RunID, c, time.Now().UTC()); err != nil {
			// An approval that cannot be recorded does not run the fix:
			// after a restart nobody could tell it was given.
			log.Error().Err(err).Msg("journal consent")
			if c.Approved {
				c = refuse(c, "the agent could not record the decision, so the fix did not run: "+err.Error())
				c.Receipt, _ = w.sign(req, fix, c)
			}
		}
		log.Info().Bool("approved", c.Approved).Str("by", c.By).Str("decision", c.Message).Str("fix", fix.String()).
			Bool("signed", c.Receipt != nil).Msg("fix consent decision")
		return c
	}
}

// refuse turns a decision into a denial by the agent, saying why.
func refuse(c wire.RunConsent, why string) wire.RunConsent {
	if c.Approved {
		why = "approved by " + c.By + ", but " + why
	}
	return wire.RunConsent{By: consent.ByAgent, Message: clip(why, 500), Mode: c.Mode, At: c.At}
}

// decide asks the endpoint's consent policy about fix.
func (w *Worker) decide(ctx context.Context, req wire.RunRequest, fix runner.Fix) wire.RunConsent {
	now := time.Now().UTC().Truncate(time.Microsecond) // as a receipt keeps it
	if w.ask == nil {
		return wire.RunConsent{By: consent.ByAgent, Message: "this agent has no consent policy to ask with", At: now}
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
	at := d.At.UTC().Truncate(time.Microsecond)
	if d.At.IsZero() {
		at = now
	}
	by := d.By
	if by == "" {
		by = consent.ByAgent
	}
	return wire.RunConsent{Approved: d.Approved, By: clip(by, 128), Message: clip(d.Message, 500), Mode: clip(string(d.Mode), 32), At: at}
}

// sign signs decision c on req's fix with the agent's key.
func (w *Worker) sign(req wire.RunRequest, fix runner.Fix, c wire.RunConsent) (*receipt.Signed, error) {
	if w.signer == nil {
		return nil, errors.New("the agent's certificate is not configured")
	}
	r := receipt.Receipt{
		Kind: receipt.KindFix, ID: req.RunID, JobID: req.JobID, AgentID: w.agentID,
		Technician: clip(req.Requester, 128), Reason: clip(req.Reason, 500), Fix: clip(fix.Short(), 128),
		Decision: receipt.Denied, By: c.By, Message: c.Message, Time: c.At,
	}
	if c.Approved {
		r.Decision = receipt.Approved
	}
	s, err := w.signer.Sign(r)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// clip makes s printable UTF-8 (control characters become spaces) of at
// most n bytes, cut at a character boundary: what a receipt accepts.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r != '\t' && unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
