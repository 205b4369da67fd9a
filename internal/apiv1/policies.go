package apiv1

import "time"

// PolicyCreate is the body of POST /v1/policies.
type PolicyCreate struct {
	Name             string            `json:"name"`
	Target           string            `json:"target,omitempty"` // selector; with Site, within that site
	Site             string            `json:"site,omitempty"`   // ID, "ORG/SITE" or a unique site name
	Check            string            `json:"check"`            // builtin:NAME or a plugin name
	Params           map[string]string `json:"params,omitempty"`
	Interval         string            `json:"interval"`      // e.g. "5m"; 10s..7d
	Fix              string            `json:"fix,omitempty"` // a plugin name or script:NAME
	FixParams        map[string]string `json:"fix_params,omitempty"`
	MaxFixesDay      int               `json:"max_fixes_day,omitempty"`       // per agent; default 3
	MaxFixesSiteHour int               `json:"max_fixes_site_hour,omitempty"` // per site; default 10
}

// Policy is a stored policy.
type Policy struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Target           string            `json:"target,omitempty"`
	Site             string            `json:"site,omitempty"` // site ID
	Check            string            `json:"check"`
	Params           map[string]string `json:"params,omitempty"`
	Interval         string            `json:"interval"`
	Fix              string            `json:"fix,omitempty"`
	FixParams        map[string]string `json:"fix_params,omitempty"`
	MaxFixesDay      int               `json:"max_fixes_day"`
	MaxFixesSiteHour int               `json:"max_fixes_site_hour"`
	CreatedBy        string            `json:"created_by"`
	CreatedAt        time.Time         `json:"created_at"`
	// States are the policy's last known check states by agent (show only).
	States []CheckState `json:"states,omitempty"`
	// Events are the latest state changes (show only), oldest first.
	Events []CheckEvent `json:"events,omitempty"`
}

// CheckEvent is a check state change an agent reported.
type CheckEvent struct {
	AgentID string    `json:"agent_id"`
	State   string    `json:"state"`
	Summary string    `json:"summary,omitempty"`
	Fix     string    `json:"fix,omitempty"` // helped, not_helped: the check after a self-heal
	At      time.Time `json:"at"`
}

// CheckState is a check's last known state on an agent.
type CheckState struct {
	AgentID   string    `json:"agent_id"`
	State     string    `json:"state"`
	Summary   string    `json:"summary,omitempty"`
	ChangedAt time.Time `json:"changed_at"`
	// CheckedAt is when the agent last reported the check to this relay
	// (kept in memory: absent after a relay restart until the next result).
	CheckedAt *time.Time `json:"checked_at,omitempty"`
}
