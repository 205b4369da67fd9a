package apiv1

import "time"

// SessionSubprotocol is the websocket subprotocol of a technician's session
// connection (GET /v1/sessions/connect).
const SessionSubprotocol = "patchbay.session.v1"

// SessionStatus is a text message the relay sends on a session connection
// before the byte stream starts: "waiting" while the endpoint decides, then
// "approved" (binary messages carrying SSH follow) or "denied"/"failed"
// (the connection closes).
type SessionStatus struct {
	State        string   `json:"state"`
	SessionID    string   `json:"session_id"`
	AgentID      string   `json:"agent_id"`
	Hostname     string   `json:"hostname,omitempty"`
	Message      string   `json:"message,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"` // granted, with "approved"
	Consent      *Consent `json:"consent,omitempty"`
	// With "waiting", once the endpoint asks a person: who is asked (e.g.
	// "the user at pc-042"), the endpoint's deadline (no answer by then
	// means deny) and the seconds left by the relay's clock when sent.
	Asking      string     `json:"asking,omitempty"`
	Deadline    *time.Time `json:"deadline,omitempty"`
	SecondsLeft *int       `json:"seconds_left,omitempty"`
}

// Consent is how an endpoint decided on a session request.
type Consent struct {
	Decision string `json:"decision"`          // approved, denied, pending, failed
	Mode     string `json:"mode,omitempty"`    // the endpoint's policy: prompt, notify, unattended
	Backend  string `json:"backend,omitempty"` // exec, web, desktop, tty
	By       string `json:"by,omitempty"`      // who decided: a local user, "policy", "timeout"
	// While pending, once the endpoint asks a person (GET /v1/sessions/{id}):
	// who is asked, the endpoint's deadline and the seconds left by the
	// relay's clock.
	Asking      string     `json:"asking,omitempty"`
	Deadline    *time.Time `json:"deadline,omitempty"`
	SecondsLeft *int       `json:"seconds_left,omitempty"`
}

// Session is one interactive session: GET /v1/sessions.
type Session struct {
	ID            string     `json:"id"`
	AgentID       string     `json:"agent_id"`
	Hostname      string     `json:"hostname"`
	Technician    string     `json:"technician"`
	Reason        string     `json:"reason"`
	State         string     `json:"state"` // requested, approved (live), ended, denied, failed
	Capabilities  []string   `json:"capabilities"`
	Granted       []string   `json:"granted,omitempty"`
	Requested     time.Time  `json:"requested"`
	Started       *time.Time `json:"started"`
	Ended         *time.Time `json:"ended"`
	Consent       Consent    `json:"consent"`
	Message       string     `json:"message,omitempty"`
	EndBy         string     `json:"end_by,omitempty"`
	EndReason     string     `json:"end_reason,omitempty"`
	RecordingSize int64      `json:"recording_size"`
	Site          string     `json:"site,omitempty"` // the agent's site ("ORG/SITE") when it was requested
}

// SSHCertRequest is the body of POST /v1/ssh/certificate: the technician's
// public key in authorized_keys format.
type SSHCertRequest struct {
	PublicKey string `json:"public_key"`
	TTL       string `json:"ttl,omitempty"` // default 8h, at most 24h
}

// SSHCert is a technician's short-lived SSH user certificate and what an
// OpenSSH client needs to trust the agents' host certificates.
type SSHCert struct {
	Certificate string    `json:"certificate"`  // authorized_keys format (…-cert-v01@openssh.com)
	KeyID       string    `json:"key_id"`       // the technician
	ValidBefore time.Time `json:"valid_before"` //
	KnownHosts  string    `json:"known_hosts"`  // "@cert-authority *.patchbay ssh-ed25519 …"
	UserCA      string    `json:"user_ca"`      // authorized_keys format
}

// SSH certificate lifetimes.
const (
	DefaultSSHCertTTL = 8 * time.Hour
	MaxSSHCertTTL     = 24 * time.Hour
)

// AgentSSHRequest is the body of POST /v1/agent/ssh-host-cert (mutual TLS):
// the agent's SSH host public key.
type AgentSSHRequest struct {
	PublicKey string `json:"public_key"`
}

// AgentSSH is the relay's answer: the host certificate and the user CA whose
// certificates the agent accepts.
type AgentSSH struct {
	HostCertificate string `json:"host_certificate"`
	UserCA          string `json:"user_ca"`
}

// SessionEnd is the body of POST /v1/sessions/{id}/end.
type SessionEnd struct {
	Reason string `json:"reason,omitempty"`
}
