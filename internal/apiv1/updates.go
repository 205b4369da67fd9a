package apiv1

import "time"

// Updates is an agent's pending updates as its last patchinstall run
// listed them (GET /v1/inventory/{agent}: updates).
type Updates struct {
	CheckedAt    time.Time       `json:"checked_at"`
	RunID        string          `json:"run_id,omitempty"`
	Manager      string          `json:"manager"`
	SecurityOnly bool            `json:"security_only,omitempty"` // the check listed security updates only
	Pending      int             `json:"pending"`
	Security     *int            `json:"security,omitempty"` // absent: the manager does not classify updates
	List         []PendingUpdate `json:"list"`
}

// PendingUpdate is one pending update.
type PendingUpdate struct {
	Name     string `json:"name"`
	Arch     string `json:"arch,omitempty"`
	From     string `json:"from,omitempty"`
	Version  string `json:"version"`
	Security bool   `json:"security,omitempty"`
	Category string `json:"category,omitempty"`
}

// PatchAgent is one agent in a patch compliance report.
type PatchAgent struct {
	AgentID   string     `json:"agent_id"`
	Hostname  string     `json:"hostname"`
	Site      string     `json:"site"`  // ORG/SITE
	State     string     `json:"state"` // patched, security-pending, updates-pending, never-checked
	CheckedAt *time.Time `json:"checked_at,omitempty"`
	Manager   string     `json:"manager,omitempty"`
	Pending   int        `json:"pending"`
	Security  *int       `json:"security,omitempty"`
}

// PatchSite is a site's patch compliance: how many agents are in each state.
type PatchSite struct {
	Site            string `json:"site"`
	Agents          int    `json:"agents"`
	Patched         int    `json:"patched"`
	SecurityPending int    `json:"security_pending"`
	UpdatesPending  int    `json:"updates_pending"`
	NeverChecked    int    `json:"never_checked"`
}
