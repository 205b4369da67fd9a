package apiv1

import "time"

// AgentRun is one of an agent's runs with its job: GET /v1/agents/{id}/runs.
type AgentRun struct {
	JobID     string    `json:"job_id"`
	Plugin    string    `json:"plugin"`
	Script    string    `json:"script,omitempty"`
	DryRun    bool      `json:"dry_run"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	RunResult
}
