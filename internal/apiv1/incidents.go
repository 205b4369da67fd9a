package apiv1

import "time"

// Incident is one incident (GET /v1/incidents/{id}; the list leaves out
// notes, links and known fixes).
type Incident struct {
	ID         string         `json:"id"`
	Title      string         `json:"title"`
	Ticket     string         `json:"ticket,omitempty"` // free text, e.g. "INC-1234"
	Site       string         `json:"site"`             // "ORG/SITE"
	Agents     []string       `json:"agents,omitempty"` // agent IDs
	Hostnames  []string       `json:"hostnames,omitempty"`
	Severity   string         `json:"severity"` // info, warning, critical
	State      string         `json:"state"`    // open, resolved
	Resolution string         `json:"resolution,omitempty"`
	KnownFix   string         `json:"known_fix,omitempty"` // the known fix that fixed it, by name
	CreatedAt  time.Time      `json:"created_at"`
	CreatedBy  string         `json:"created_by"`
	ResolvedAt time.Time      `json:"resolved_at,omitzero"`
	ResolvedBy string         `json:"resolved_by,omitempty"`
	Notes      []IncidentNote `json:"notes,omitempty"`
	Links      []IncidentLink `json:"links,omitempty"`
	KnownFixes []KnownFixHint `json:"known_fixes,omitempty"` // known fixes whose symptom matches
}

// IncidentNote is one note, in Markdown; notes are only ever added.
type IncidentNote struct {
	Author    string    `json:"author"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// IncidentLink ties an incident to a session, job or alert.
type IncidentLink struct {
	Kind      string    `json:"kind"` // session, job, alert
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// IncidentList is the answer of GET /v1/incidents.
type IncidentList struct {
	Incidents []Incident `json:"incidents"`
}

// IncidentCreate is the body of POST /v1/incidents. With FromAlert the
// alert's agent, site, severity and summary are the defaults; with
// FromSession the session's reason is the title, its agent and site the
// defaults. Fields given override them.
type IncidentCreate struct {
	Title       string   `json:"title,omitempty"`
	Ticket      string   `json:"ticket,omitempty"`
	Site        string   `json:"site,omitempty"`
	Agents      []string `json:"agents,omitempty"` // IDs, prefixes or hostnames
	Severity    string   `json:"severity,omitempty"`
	Note        string   `json:"note,omitempty"`
	FromAlert   string   `json:"from_alert,omitempty"`
	FromSession string   `json:"from_session,omitempty"`
}

// IncidentNoteAdd is the body of POST /v1/incidents/{id}/notes.
type IncidentNoteAdd struct {
	Body string `json:"body"`
}

// IncidentLinkAdd is the body of POST /v1/incidents/{id}/links: one of
// its fields.
type IncidentLinkAdd struct {
	Job     string `json:"job,omitempty"`
	Session string `json:"session,omitempty"`
	Alert   string `json:"alert,omitempty"`
}

// IncidentResolve is the body of POST /v1/incidents/{id}/resolve.
type IncidentResolve struct {
	Resolution string `json:"resolution"`
	KnownFix   string `json:"known_fix,omitempty"` // a known fix's name
}

// KnownFix is a knowledge base entry: a symptom (a check name and/or an
// error text pattern) and the catalog plugin or script that fixes it.
type KnownFix struct {
	ID          string            `json:"id,omitempty"`
	Name        string            `json:"name"`
	Title       string            `json:"title,omitempty"`
	Check       string            `json:"check,omitempty"`
	Pattern     string            `json:"pattern,omitempty"`
	PatternKind string            `json:"pattern_kind,omitempty"` // substring (default) or regexp
	Plugin      string            `json:"plugin"`
	Params      map[string]string `json:"params,omitempty"`
	Description string            `json:"description,omitempty"` // Markdown
	CreatedAt   time.Time         `json:"created_at,omitzero"`
	CreatedBy   string            `json:"created_by,omitempty"`
}

// KnownFixList is the answer of GET /v1/known-fixes.
type KnownFixList struct {
	KnownFixes []KnownFix `json:"known_fixes"`
}

// KnownFixHint is a known fix offered for an alert or incident, with the
// command that would run it (never run by itself).
type KnownFixHint struct {
	Name    string `json:"name"`
	Title   string `json:"title,omitempty"`
	Command string `json:"command"`
}
