package server

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/server/alerts"
	"github.com/patchbay/patchbay/server/store"
)

// checkAlerts turns check state changes into alerts (issue 17): a failing
// check opens a "check" alert per agent and check, a fix that did not help
// a "selfheal_failed" one, and a passing check resolves both by itself.
type checkAlerts struct {
	alerts *alerts.Service
	log    zerolog.Logger
}

func (c checkAlerts) CheckFailed(ctx context.Context, agentID, check, summary string) {
	if _, err := c.alerts.Raise(ctx, alerts.Alert{Kind: alerts.KindCheck, AgentID: agentID, Check: check,
		Severity: store.SeverityWarning, Summary: summary}); err != nil {
		c.log.Error().Err(err).Str("agent_id", agentID).Str("check", check).Msg("raise check alert")
	}
}

func (c checkAlerts) CheckPassed(ctx context.Context, agentID, check string) {
	for _, kind := range []string{alerts.KindCheck, alerts.KindSelfHealFailed} {
		if _, err := c.alerts.Clear(ctx, store.AlertKey{Kind: kind, AgentID: agentID, Check: check}); err != nil {
			c.log.Error().Err(err).Str("agent_id", agentID).Str("check", check).Str("kind", kind).Msg("resolve alert")
		}
	}
}

func (c checkAlerts) SelfHealFailed(ctx context.Context, agentID, check, summary string) {
	if _, err := c.alerts.Raise(ctx, alerts.Alert{Kind: alerts.KindSelfHealFailed, AgentID: agentID, Check: check,
		Severity: store.SeverityWarning, Summary: summary}); err != nil {
		c.log.Error().Err(err).Str("agent_id", agentID).Str("check", check).Msg("raise self-heal alert")
	}
}
