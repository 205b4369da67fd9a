package apiv1

import "time"

// Alert is one alert (GET /v1/alerts, /v1/alerts/{id}).
type Alert struct {
	ID         string            `json:"id"`
	Kind       string            `json:"kind"` // check, agent_offline, job_halted, selfheal_failed
	AgentID    string            `json:"agent_id,omitempty"`
	Hostname   string            `json:"hostname,omitempty"`
	Check      string            `json:"check,omitempty"` // the check's name; the job ID for job_halted
	Site       string            `json:"site,omitempty"`  // "ORG/SITE"; empty for alerts about no agent
	Severity   string            `json:"severity"`        // info, warning, critical
	State      string            `json:"state"`           // open, acknowledged, resolved
	Summary    string            `json:"summary"`
	Details    map[string]string `json:"details,omitempty"`
	Count      int               `json:"count"` // times raised while live
	OpenedAt   time.Time         `json:"opened_at"`
	LastSeen   time.Time         `json:"last_seen"`
	AckedAt    time.Time         `json:"acknowledged_at,omitzero"`
	AckedBy    string            `json:"acknowledged_by,omitempty"`
	ResolvedAt time.Time         `json:"resolved_at,omitzero"`
	ResolvedBy string            `json:"resolved_by,omitempty"`
	Note       string            `json:"note,omitempty"`
	KnownFixes []KnownFixHint    `json:"known_fixes,omitempty"` // known fixes whose symptom matches
}

// AlertList is the answer of GET /v1/alerts.
type AlertList struct {
	Alerts []Alert `json:"alerts"`
}

// AlertChange is the body of POST /v1/alerts/{id}/ack and /resolve.
type AlertChange struct {
	Note string `json:"note,omitempty"`
}

// AlertRoute sends the alerts of a site (or "all") at or above a severity
// to a webhook or an SMTP server (POST/GET /v1/alert-routes). Secrets
// (Secret: the webhook's HMAC key or the SMTP password) are write-only.
type AlertRoute struct {
	ID          string    `json:"id,omitempty"`
	Site        string    `json:"site"`         // "all", or a site reference
	MinSeverity string    `json:"min_severity"` // info, warning, critical
	Kind        string    `json:"kind"`         // webhook, smtp
	Target      string    `json:"target"`       // https://... or smtp://HOST:PORT
	Secret      string    `json:"secret,omitempty"`
	From        string    `json:"from,omitempty"`
	To          []string  `json:"to,omitempty"`
	User        string    `json:"user,omitempty"`
	CAPEM       string    `json:"ca_pem,omitempty"` // CA of the receiver's certificate (default: the system's)
	CreatedAt   time.Time `json:"created_at,omitzero"`
	CreatedBy   string    `json:"created_by,omitempty"`
}

// AlertRouteList is the answer of GET /v1/alert-routes.
type AlertRouteList struct {
	Routes []AlertRoute `json:"routes"`
}
