package apiv1

import "time"

// PolicyStates is one policy's line of GET /v1/policy-states: how many of
// the caller's agents pass, fail or cannot run its check, and the newest
// failing ones.
type PolicyStates struct {
	Policy   string         `json:"policy"` // name
	PolicyID string         `json:"policy_id"`
	Passed   int            `json:"passed"`
	Failed   int            `json:"failed"`
	Error    int            `json:"error"`
	Failing  []FailingCheck `json:"failing,omitempty"` // at most ?failing=N (default 10), newest first
}

// FailingCheck is an agent whose check failed or could not run.
type FailingCheck struct {
	AgentID   string    `json:"agent_id"`
	Hostname  string    `json:"hostname"`
	State     string    `json:"state"` // failed, error
	Summary   string    `json:"summary,omitempty"`
	ChangedAt time.Time `json:"changed_at"`
}

// PolicyStateList is the answer of GET /v1/policy-states.
type PolicyStateList struct {
	Policies []PolicyStates `json:"policies"`
}

// AgentCheck is one line of GET /v1/agents/{id}/checks: a policy's check
// as the agent last reported it.
type AgentCheck struct {
	Policy    string     `json:"policy"` // name
	PolicyID  string     `json:"policy_id"`
	Check     string     `json:"check"`
	State     string     `json:"state"`
	Summary   string     `json:"summary,omitempty"`
	ChangedAt time.Time  `json:"changed_at"`
	CheckedAt *time.Time `json:"checked_at,omitempty"` // as in CheckState
}

// AgentCheckList is the answer of GET /v1/agents/{id}/checks.
type AgentCheckList struct {
	Checks []AgentCheck `json:"checks"`
}
