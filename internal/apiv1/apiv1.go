// Package apiv1 holds the request and response bodies of the relay's REST
// API (/v1/...), shared by the relay and the patchbay CLI. Field names are
// the JSON that `patchbay ... -o json` prints, so changing one is a breaking
// change for scripts.
package apiv1

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Roles, from least to most privileged. Each role may do what the roles
// before it may, with one exception: reading session recordings is for the
// session's own technician, auditors and admins (CanReadRecordings), so a
// technician does not read other technicians' recordings.
const (
	RoleViewer     = "viewer"     // list agents, jobs, sessions; read the audit log
	RoleAuditor    = "auditor"    // + read every session's recording
	RoleTechnician = "technician" // + sessions and runs (their own recordings; cancel their own jobs)
	RoleAdmin      = "admin"      // + tokens, API tokens, users, revocation, any job or session
)

// RoleRank orders roles; 0 means unknown.
func RoleRank(role string) int {
	switch role {
	case RoleViewer:
		return 1
	case RoleAuditor:
		return 2
	case RoleTechnician:
		return 3
	case RoleAdmin:
		return 4
	}
	return 0
}

// Roles lists every role, least privileged first (for help and errors).
var Roles = []string{RoleViewer, RoleAuditor, RoleTechnician, RoleAdmin}

// CanReadRecordings reports whether role reads every session's recording
// (others read only the recordings of their own sessions).
func CanReadRecordings(role string) bool { return role == RoleAuditor || role == RoleAdmin }

// Error is the body of every non-2xx response.
type Error struct {
	Error string `json:"error"`
	// Code names the error for programs, when it needs telling apart
	// (ErrCodeTOTPRequired); mostly empty.
	Code string `json:"code,omitempty"`
}

// Agent is one enrolled agent.
type Agent struct {
	ID         string            `json:"id"`
	Hostname   string            `json:"hostname"`
	OS         string            `json:"os"`
	Arch       string            `json:"arch"`
	Version    string            `json:"version"`
	Tags       map[string]string `json:"tags"`
	Online     bool              `json:"online"`
	LastSeen   *time.Time        `json:"last_seen"` // now while online; null if never connected
	OSVersion  string            `json:"os_version,omitempty"`
	Users      []string          `json:"users,omitempty"`
	IPs        []string          `json:"ips,omitempty"`
	ScopedTags map[string]string `json:"scoped_tags,omitempty"` // tags set by the enrollment token; they win
	EnrolledAt time.Time         `json:"enrolled_at"`
	FirstSeen  *time.Time        `json:"first_seen,omitempty"`
	Revoked    bool              `json:"revoked"`
	RevokedAt  *time.Time        `json:"revoked_at,omitempty"`
	Site       string            `json:"site"`    // "ORG/SITE"
	SiteID     string            `json:"site_id"` // the site's ID
}

// EnrollRequest is what `patchbay-agent enroll` sends to POST /v1/enroll.
type EnrollRequest struct {
	Token    string            `json:"token"`
	CSR      []byte            `json:"csr"` // DER, base64 in JSON
	Hostname string            `json:"hostname,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
}

// EnrollResponse carries the agent's identity.
type EnrollResponse struct {
	AgentID     string            `json:"agent_id"`
	Certificate string            `json:"certificate"` // PEM
	CA          string            `json:"ca"`          // PEM
	Tags        map[string]string `json:"tags"`        // effective tags
	// SSHUserCA is the relay's SSH user CA (authorized_keys format): the agent
	// pins it and accepts technicians' certificates only from it.
	SSHUserCA string `json:"ssh_user_ca,omitempty"`
}

// EnrollTokenRequest creates an enrollment token.
type EnrollTokenRequest struct {
	Tags map[string]string `json:"tags,omitempty"`
	Uses *int              `json:"uses,omitempty"` // nil: 1; 0: unlimited
	TTL  string            `json:"ttl,omitempty"`  // e.g. "24h", "7d"; empty: 24h
	// Site is where agents enrolled with the token belong: a site's ID,
	// ID prefix, "ORG/SITE" or unique name; empty: the default site.
	Site string `json:"site,omitempty"`
}

// EnrollToken describes an enrollment token. Token (the secret) is only
// set in the answer to a create.
type EnrollToken struct {
	ID          string            `json:"id"`
	Token       string            `json:"token,omitempty"`
	Tags        map[string]string `json:"tags"`
	UsesAllowed int               `json:"uses_allowed"` // 0: unlimited
	Uses        int               `json:"uses"`
	ExpiresAt   time.Time         `json:"expires_at"`
	CreatedAt   time.Time         `json:"created_at"`
	CreatedBy   string            `json:"created_by"`
	Revoked     bool              `json:"revoked"`
	Site        string            `json:"site"` // "ORG/SITE"
}

// APITokenRequest creates an API token for a person or a script.
type APITokenRequest struct {
	Role string `json:"role"`
	Name string `json:"name"`
	TTL  string `json:"ttl,omitempty"` // empty: no expiry
	// Sites the token reaches (references as for EnrollTokenRequest.Site,
	// or "all"); empty: the default site. Admin tokens reach every site.
	Sites []string `json:"sites,omitempty"`
}

// APIToken describes an API token. Token is only set on create.
type APIToken struct {
	ID        string     `json:"id"`
	Token     string     `json:"token,omitempty"`
	Role      string     `json:"role"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Revoked   bool       `json:"revoked"`
	User      string     `json:"user,omitempty"`  // the owner's name; empty for a token of no user
	Kind      string     `json:"kind,omitempty"`  // "session" for a password login's token; empty for an API token
	Sites     []string   `json:"sites,omitempty"` // "ORG/SITE" names, or "all"; for a user's token, the user's
}

// Whoami is the answer to POST /v1/login and GET /v1/whoami.
type Whoami struct {
	TokenID       string `json:"token_id"`
	Name          string `json:"name"`
	Role          string `json:"role"`
	CAFingerprint string `json:"ca_fingerprint"`
	ServerVersion string `json:"server_version,omitempty"`
	User          string `json:"user,omitempty"` // the token's owner; empty for a token of no user
	// Sites are the sites the caller reaches ("ORG/SITE"), or ["all"].
	Sites []string `json:"sites"`
}

// AuditHead is the newest audit record's sequence number and hash.
type AuditHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// ParseTTL parses a Go duration ("90m", "24h") or a number of days ("7d").
// It must be positive and at most max.
func ParseTTL(s string, max time.Duration) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil {
		return 0, fmt.Errorf("ttl %q: want a duration such as 30m, 24h or 7d", s)
	}
	if d <= 0 || d > max {
		return 0, fmt.Errorf("ttl %q: must be between 1s and %v", s, max)
	}
	return d, nil
}
