package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// PolicyStates is where a policy's check stands across the agents of a
// scope: how many agents are in each state, and the agents whose check
// does not pass.
type PolicyStates struct {
	PolicyID string
	Counts   map[string]int // "passed", "failed", "error": agents
	Failing  []FailingCheck // newest change first, at most the limit asked
}

// FailingCheck is an agent whose check last failed or could not run.
type FailingCheck struct {
	AgentID, Hostname, State, Summary string
	ChangedAt                         time.Time
}

// PolicyStateSummary returns, by policy ID, the check states of the
// agents of scope that are not revoked, with at most failingLimit failing
// agents per policy (the counts are exact).
func (s *Store) PolicyStateSummary(ctx context.Context, scope Scope, failingLimit int) (map[string]*PolicyStates, error) {
	out := map[string]*PolicyStates{}
	get := func(id string) *PolicyStates {
		p := out[id]
		if p == nil {
			p = &PolicyStates{PolicyID: id, Counts: map[string]int{}}
			out[id] = p
		}
		return p
	}
	var l argList
	rows, err := s.db.QueryContext(ctx, `SELECT cs.policy_id, cs.state, COUNT(*) FROM check_states cs JOIN agents a ON a.id = cs.agent_id
		WHERE a.revoked_at IS NULL AND `+scope.where("a.site_id", l.add)+` GROUP BY cs.policy_id, cs.state`, l.args...)
	if err != nil {
		return nil, fmt.Errorf("policy states: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, state string
		var n int
		if err := rows.Scan(&id, &state, &n); err != nil {
			return nil, fmt.Errorf("policy states: %w", err)
		}
		get(id).Counts[state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("policy states: %w", err)
	}
	rows.Close()
	if failingLimit <= 0 {
		return out, nil
	}
	l = argList{}
	rows, err = s.db.QueryContext(ctx, `SELECT cs.policy_id, cs.agent_id, a.hostname, cs.state, cs.summary, cs.changed_at
		FROM check_states cs JOIN agents a ON a.id = cs.agent_id
		WHERE cs.state <> 'passed' AND a.revoked_at IS NULL AND `+scope.where("a.site_id", l.add)+`
		ORDER BY cs.policy_id, cs.changed_at DESC, cs.agent_id`, l.args...)
	if err != nil {
		return nil, fmt.Errorf("failing checks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			f  FailingCheck
			at sql.NullTime
		)
		if err := rows.Scan(&id, &f.AgentID, &f.Hostname, &f.State, &f.Summary, &at); err != nil {
			return nil, fmt.Errorf("failing checks: %w", err)
		}
		if p := get(id); len(p.Failing) < failingLimit {
			f.ChangedAt = fromNull(at)
			p.Failing = append(p.Failing, f)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failing checks: %w", err)
	}
	return out, nil
}

// scanCheckState reads agent_id, policy_id, state, summary, changed_at.
func scanCheckState(sc scanner) (CheckState, error) {
	var (
		c  CheckState
		at sql.NullTime
	)
	err := sc.Scan(&c.AgentID, &c.PolicyID, &c.State, &c.Summary, &at)
	c.ChangedAt = fromNull(at)
	return c, err
}

// scanCheckEvent reads id, agent_id, policy_id, state, summary, fix, at.
func scanCheckEvent(sc scanner) (CheckEvent, error) {
	var (
		e  CheckEvent
		at sql.NullTime
	)
	err := sc.Scan(&e.ID, &e.AgentID, &e.PolicyID, &e.State, &e.Summary, &e.Fix, &at)
	e.At = fromNull(at)
	return e, err
}

// PolicyCheckStates returns the check states of policyID on the agents of
// scope, by agent.
func (s *Store) PolicyCheckStates(ctx context.Context, scope Scope, policyID string) ([]CheckState, error) {
	var l argList
	p := l.add(policyID)
	out, err := queryRows(ctx, s.db, scanCheckState, `SELECT cs.agent_id, cs.policy_id, cs.state, cs.summary, cs.changed_at
		FROM check_states cs JOIN agents a ON a.id = cs.agent_id
		WHERE cs.policy_id = `+p+` AND `+scope.where("a.site_id", l.add)+` ORDER BY cs.agent_id`, l.args...)
	if err != nil {
		return nil, fmt.Errorf("check states: %w", err)
	}
	return out, nil
}

// PolicyCheckEvents returns the latest limit check events of policyID on
// the agents of scope, oldest first.
func (s *Store) PolicyCheckEvents(ctx context.Context, scope Scope, policyID string, limit int) ([]CheckEvent, error) {
	var l argList
	p := l.add(policyID)
	where := scope.where("a.site_id", l.add)
	lim := l.add(limit)
	out, err := queryRows(ctx, s.db, scanCheckEvent, `SELECT id, agent_id, policy_id, state, summary, fix, at FROM (
		SELECT e.id, e.agent_id, e.policy_id, e.state, e.summary, e.fix, e.at FROM check_events e JOIN agents a ON a.id = e.agent_id
		WHERE e.policy_id = `+p+` AND `+where+` ORDER BY e.at DESC, e.id DESC LIMIT `+lim+`) e
		ORDER BY at, id`, l.args...)
	if err != nil {
		return nil, fmt.Errorf("check events: %w", err)
	}
	return out, nil
}
