package wire

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/patchbay/patchbay/internal/receipt"
)

// Control messages of interactive sessions.
//
//	relay -> agent  session_request SessionRequest (a technician asks; the agent decides by its own policy)
//	agent -> relay  session_pending SessionPending (a person at the machine is being asked; until when)
//	agent -> relay  session_answer  SessionAnswer  (approved or refused, by whom, with the signed receipt)
//	agent -> relay  session_end     SessionEnd     (the session ended on the endpoint, and why, signed)
//	relay -> agent  session_end     SessionEnd     (the technician left, or an admin ended it)
//
// After an approval the relay opens a stream of kind SSHStreamKind(id) to
// the agent and copies bytes between it and the technician: the agent serves
// SSH on it, so the relay never sees the session in clear. The agent opens a
// stream of kind RecordingStreamKind(id) to the relay and writes the
// session's asciicast v2 recording on it as the session runs.
const (
	MsgSessionRequest = "session_request"
	MsgSessionAnswer  = "session_answer"
	MsgSessionPending = "session_pending"
	MsgSessionEnd     = "session_end"
)

// Session capabilities: what a technician asks for and the user approves.
// Each is named in the consent prompt and enforced by the agent.
const (
	CapShell   = "shell"   // interactive shell on a PTY
	CapExec    = "exec"    // run a command (also scp in its legacy mode)
	CapSFTP    = "sftp"    // the sftp subsystem (sftp, and scp of OpenSSH 9+)
	CapForward = "forward" // local port forwarding to the endpoint's loopback
	// CapDesktop: see and control the screen through VNC (the agent starts
	// x11vnc for the session, or forwards to the VNC server the endpoint's
	// config names). The user may approve it as CapDesktopView instead.
	CapDesktop = "desktop"
	// CapDesktopView: see the screen only; the agent drops keyboard,
	// pointer and clipboard input whatever the VNC server allows.
	CapDesktopView = "desktop-view"
)

// Capabilities lists every capability, in prompt order.
var Capabilities = []string{CapShell, CapExec, CapSFTP, CapForward, CapDesktop, CapDesktopView}

// CapabilityText says what a capability lets a technician do, for prompts.
var CapabilityText = map[string]string{
	CapShell:       "open an interactive shell",
	CapExec:        "run commands",
	CapSFTP:        "copy files to and from this machine",
	CapForward:     "connect to services on this machine's loopback (e.g. RDP, VNC)",
	CapDesktop:     "see and control your screen",
	CapDesktopView: "see your screen (view only)",
}

// DesktopRequest is the SSH global request (want-reply, empty payload) a
// client with CapDesktop or CapDesktopView sends to get the session's VNC
// server. The agent starts it when needed and replies true with a
// DesktopReply (ssh.Marshal), or false with a UTF-8 message saying why.
// The client then opens a direct-tcpip channel to Host:Port.
const DesktopRequest = "desktop@patchbay.dev"

// DesktopReply is the success payload of DesktopRequest (SSH wire encoding).
type DesktopReply struct {
	Host     string // a loopback address of the endpoint, e.g. "127.0.0.1"
	Port     uint32
	Password string // the one-time VNC password; "" when the endpoint's own VNC server asks for its own
	ViewOnly bool   // input is dropped by the agent
	Server   string // what serves the screen, e.g. "x11vnc on :0", "TightVNC at 127.0.0.1:5900"
}

// Limits on session messages.
const (
	MaxSessionReason = 500
	MaxTechnicianLen = 64
	MaxEndReasonLen  = 500
)

// Stream kind prefixes of a session's streams.
const (
	sshKindPrefix = "ssh."
	recKindPrefix = "rec."
)

// SSHStreamKind is the kind of the stream that carries session id's SSH bytes.
func SSHStreamKind(id string) string { return sshKindPrefix + id }

// RecordingStreamKind is the kind of the stream that carries session id's recording.
func RecordingStreamKind(id string) string { return recKindPrefix + id }

// ParseSessionStreamKind splits a session stream kind into its prefix
// ("ssh" or "rec") and session ID; ok is false for any other kind.
func ParseSessionStreamKind(kind string) (what, id string, ok bool) {
	for _, p := range []string{sshKindPrefix, recKindPrefix} {
		if rest, found := strings.CutPrefix(kind, p); found && ValidUUID(rest) {
			return strings.TrimSuffix(p, "."), rest, true
		}
	}
	return "", "", false
}

// ValidCapabilities checks a capability list: known names, no repeats, not empty.
func ValidCapabilities(caps []string) error {
	if len(caps) == 0 {
		return fmt.Errorf("no capabilities requested (want some of %s)", strings.Join(Capabilities, ", "))
	}
	seen := map[string]bool{}
	for _, c := range caps {
		if !slices.Contains(Capabilities, c) {
			return fmt.Errorf("unknown capability %q (want %s)", c, strings.Join(Capabilities, ", "))
		}
		if seen[c] {
			return fmt.Errorf("capability %q named twice", c)
		}
		seen[c] = true
	}
	return nil
}

// ValidTechnician reports whether s can name a technician: 1-64 of
// [A-Za-z0-9_.@-], the same rule as API token names.
func ValidTechnician(s string) bool {
	if len(s) == 0 || len(s) > MaxTechnicianLen {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.@-", c)) {
			return false
		}
	}
	return true
}

// checkText accepts printable UTF-8 of at most max bytes (tabs allowed; no
// other control characters, so that a prompt cannot be forged with escapes).
func checkText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s of %d bytes (limit %d)", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not UTF-8", what)
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%s contains control character %U", what, r)
		}
	}
	return nil
}

// SessionRequest asks the agent for an interactive session.
type SessionRequest struct {
	SessionID    string    `json:"session_id"`
	Technician   string    `json:"technician"` // the API token's name; also the SSH certificate's key ID
	Reason       string    `json:"reason"`     // why, e.g. a ticket number
	Capabilities []string  `json:"capabilities"`
	RequestedAt  time.Time `json:"requested_at"`
}

// Validate checks every field.
func (m *SessionRequest) Validate() error {
	if !ValidUUID(m.SessionID) {
		return fmt.Errorf("session_id %q is not a UUID", m.SessionID)
	}
	if !ValidTechnician(m.Technician) {
		return fmt.Errorf("technician %q: want 1-64 of [A-Za-z0-9_.@-]", m.Technician)
	}
	if err := checkText("reason", m.Reason, MaxSessionReason); err != nil {
		return err
	}
	return ValidCapabilities(m.Capabilities)
}

// SessionAnswer is the agent's decision on a SessionRequest.
type SessionAnswer struct {
	SessionID    string   `json:"session_id"`
	Approved     bool     `json:"approved"`
	Mode         string   `json:"mode"`              // the agent's consent mode: prompt, notify, unattended
	Backend      string   `json:"backend,omitempty"` // how the user was asked: exec, web, desktop, tty
	By           string   `json:"by,omitempty"`      // who decided: a local user, or "policy"
	Message      string   `json:"message,omitempty"` // why it was refused, or what the user said
	Capabilities []string `json:"capabilities,omitempty"`
	// MaxDuration and IdleTimeout are the limits the agent will enforce.
	MaxDuration Duration `json:"max_duration,omitempty"`
	IdleTimeout Duration `json:"idle_timeout,omitempty"`
	// Receipt is the decision signed by the agent's key (internal/receipt,
	// kind "session", decision "approved" or "denied"). The relay refuses an
	// answer without a valid one: the session does not start.
	Receipt *receipt.Signed `json:"receipt,omitempty"`
}

// Validate checks every field.
func (m *SessionAnswer) Validate() error {
	if !ValidUUID(m.SessionID) {
		return fmt.Errorf("session_id %q is not a UUID", m.SessionID)
	}
	switch m.Mode {
	case "prompt", "notify", "unattended":
	default:
		return fmt.Errorf("mode %q: want prompt, notify or unattended", m.Mode)
	}
	for what, s := range map[string]string{"backend": m.Backend, "by": m.By} {
		if err := checkText(what, s, 128); err != nil {
			return err
		}
	}
	if err := checkText("message", m.Message, MaxEndReasonLen); err != nil {
		return err
	}
	if m.Approved {
		if err := ValidCapabilities(m.Capabilities); err != nil {
			return err
		}
	}
	if m.MaxDuration < 0 || m.IdleTimeout < 0 {
		return fmt.Errorf("negative session limit")
	}
	return checkReceipt(m.Receipt)
}

// checkReceipt bounds a signed receipt's parts; the relay verifies it.
func checkReceipt(s *receipt.Signed) error {
	if s == nil {
		return nil
	}
	return s.CheckSize()
}

// SessionPending says that the agent is asking a person at the machine
// about a session, and until when: the relay shows the technician the wait.
type SessionPending struct {
	SessionID string    `json:"session_id"`
	Deadline  time.Time `json:"deadline"`         // no answer by then means deny
	Asking    string    `json:"asking,omitempty"` // who is asked, e.g. "the user at pc-042"
}

// Validate checks every field.
func (m *SessionPending) Validate() error {
	if !ValidUUID(m.SessionID) {
		return fmt.Errorf("session_id %q is not a UUID", m.SessionID)
	}
	if m.Deadline.IsZero() {
		return fmt.Errorf("session_pending without a deadline")
	}
	if y := m.Deadline.Year(); y < 2000 || y > 9999 {
		return fmt.Errorf("deadline %v out of range", m.Deadline)
	}
	return checkText("asking", m.Asking, 128)
}

// SessionEnd says that a session ended (agent -> relay) or must end
// (relay -> agent).
type SessionEnd struct {
	SessionID string `json:"session_id"`
	By        string `json:"by,omitempty"` // "user", "technician", "admin", "idle", "limit", ...
	Reason    string `json:"reason,omitempty"`
	// Receipt (agent -> relay) is the end signed by the agent's key
	// (decision "ended", by whom); the relay keeps it in the audit log.
	Receipt *receipt.Signed `json:"receipt,omitempty"`
}

// Validate checks every field.
func (m *SessionEnd) Validate() error {
	if !ValidUUID(m.SessionID) {
		return fmt.Errorf("session_id %q is not a UUID", m.SessionID)
	}
	if err := checkText("by", m.By, 64); err != nil {
		return err
	}
	if err := checkText("reason", m.Reason, MaxEndReasonLen); err != nil {
		return err
	}
	return checkReceipt(m.Receipt)
}
