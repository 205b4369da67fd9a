package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/receipt"
	"github.com/patchbay/patchbay/internal/wire"
)

// consentReport is a stored result that carries a consent decision on its
// fix (the plugin or script needs consent).
type consentReport struct {
	index   int // in the batch's results
	agentID string
	jobID   string // "" when the run was not tracked in memory
	result  *wire.RunResult
}

// consentJSON is the decision as the runs table keeps it (no receipt: that
// is in the audit log).
func consentJSON(c wire.RunConsent) string {
	b, err := json.Marshal(apiv1.RunConsent{Approved: c.Approved, By: c.By, Message: c.Message, Mode: c.Mode, At: c.At.UTC()})
	if err != nil {
		return ""
	}
	return string(b)
}

// auditConsent appends the decision to the audit log: fix.approved or
// fix.denied, by the agent on behalf of whoever decided, with the receipt
// the agent signed when it verifies and names this run, this agent and this
// decision (`patchbay audit verify` checks it again against the CA pinned
// at login); a receipt that does not is left out and the record says why.
func (d *Dispatcher) auditConsent(ctx context.Context, c consentReport) {
	m := c.result
	dec := *m.Consent
	action := "fix.denied"
	if dec.Approved {
		action = "fix.approved"
	}
	d.metrics.ConsentDecision("fix", consentDecision(dec.Approved, dec.By))
	detail := map[string]string{
		"run": m.RunID, "agent": c.agentID, "by": dec.By, "message": dec.Message, "mode": dec.Mode,
		"state": m.State, "at": dec.At.UTC().Format(time.RFC3339Nano),
	}
	if c.jobID != "" {
		detail["job"] = c.jobID
	}
	if s := dec.Receipt; s == nil {
		detail["receipt_missing"] = "the agent sent no signed receipt"
	} else if err := d.checkReceipt(ctx, *s, m.RunID, c.jobID, c.agentID, dec.Approved); err != nil {
		detail["receipt_missing"] = err.Error()
		d.log.Warn().Err(err).Str("run_id", m.RunID).Str("agent_id", c.agentID).Msg("fix consent receipt left out of the audit log")
	} else {
		receipt.AddToDetail(detail, *s)
	}
	if d.audit == nil {
		return
	}
	if err := d.audit(ctx, "agent "+c.agentID+" ("+dec.By+")", action, "run "+m.RunID, detail); err != nil {
		d.log.Error().Err(err).Str("run_id", m.RunID).Msg("audit fix consent")
	}
}

// checkReceipt verifies s as sent on agentID's link (signed by the key of
// the agent's certificate on record, from the relay CA) and matches it to
// the run.
func (d *Dispatcher) checkReceipt(ctx context.Context, s receipt.Signed, runID, jobID, agentID string, approved bool) error {
	if _, err := s.CheckFrom(ctx, d.roots, d.store, agentID); err != nil {
		return err
	}
	return matchReceipt(s, runID, jobID, agentID, approved)
}

// matchReceipt checks that a signed receipt is about this run's fix and
// says what the result says. The signature is checked by audit verify.
func matchReceipt(s receipt.Signed, runID, jobID, agentID string, approved bool) error {
	if err := s.CheckSize(); err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	r, err := receipt.Decode(s.Receipt)
	if err != nil {
		return err
	}
	want := receipt.Denied
	if approved {
		want = receipt.Approved
	}
	switch {
	case r.Kind != receipt.KindFix:
		return fmt.Errorf("receipt: kind %q, want %q", r.Kind, receipt.KindFix)
	case r.ID != runID:
		return fmt.Errorf("receipt: for run %s, not %s", r.ID, runID)
	case jobID != "" && r.JobID != jobID:
		return fmt.Errorf("receipt: for job %s, not %s", r.JobID, jobID)
	case r.AgentID != agentID:
		return fmt.Errorf("receipt: names agent %s, sent by agent %s", r.AgentID, agentID)
	case r.Decision != want:
		return fmt.Errorf("receipt: says %s, the result says %s", r.Decision, want)
	}
	return nil
}

// consentDecision names a decision for the metrics: approved, denied, or
// timeout when nobody answered in time (the agent's consent.ByTimeout).
func consentDecision(approved bool, by string) string {
	switch {
	case approved:
		return "approved"
	case by == "timeout":
		return "timeout"
	}
	return "denied"
}
