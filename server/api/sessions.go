package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/sessions"
	"github.com/patchbay/patchbay/server/store"
)

// Sessions is what the API needs from the session broker.
type Sessions interface {
	Serve(ctx context.Context, ws *websocket.Conn, req sessions.Request) error
	End(id, by, reason string) bool
	// OpenRecording opens a session's recording (os.ErrNotExist: none).
	OpenRecording(ctx context.Context, id string) (io.ReadSeekCloser, error)
	// Waiting reports whether a requested session waits for a person at
	// the machine, who is asked and until when.
	Waiting(id string) (deadline time.Time, asking string, ok bool)
}

// SSHCA signs technicians' and agents' SSH certificates (*certs.SSHCAs).
type SSHCA interface {
	SignUserCert(pub ssh.PublicKey, technician string, ttl time.Duration, now time.Time) (*ssh.Certificate, error)
	SignHostCert(pub ssh.PublicKey, agentID string, principals []string, ttl time.Duration, now time.Time) (*ssh.Certificate, error)
	KnownHostsLine() string
	UserCAKey() ssh.PublicKey
}

// hostCertTTL is the lifetime of an agent's SSH host certificate; agents
// renew it whenever they connect with less than a week left.
const hostCertTTL = 30 * 24 * time.Hour

// sessionUpgrader upgrades technician session connections: from the CLI
// (no Origin) or from the web console's terminal, whose Origin must be this
// relay (auth has already checked the console session's cookie and Origin;
// a browser cannot send a bearer token on a websocket). Any other Origin is
// refused.
var sessionUpgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   32 << 10,
	WriteBufferSize:  64 << 10,
	WriteBufferPool:  &sync.Pool{}, // an idle session holds no write buffer
	Subprotocols:     []string{apiv1.SessionSubprotocol},
	CheckOrigin:      sameOriginOrNone,
	Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
		WriteError(w, status, "session: %v", reason)
	},
}

// sameOriginOrNone accepts a request without an Origin, or whose Origin is
// https://{the relay's own host}.
func sameOriginOrNone(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Scheme == "https" && u.Host == r.Host && u.Path == "" && r.Header.Get("Authorization") == ""
}

func (a *API) registerSessions(mux *http.ServeMux) {
	mux.Handle("GET /v1/agents/{id}/session", relayedFrom(a.auth(apiv1.RoleTechnician, a.handleSessionConnect)))
	mux.Handle("GET /v1/sessions", a.auth(apiv1.RoleViewer, a.handleSessionList))
	mux.Handle("GET /v1/sessions/{id}", a.auth(apiv1.RoleViewer, a.handleSessionShow))
	mux.Handle("GET /v1/sessions/{id}/recording", a.auth(apiv1.RoleViewer, a.handleSessionRecording))
	mux.Handle("POST /v1/sessions/{id}/end", relayedFrom(a.auth(apiv1.RoleTechnician, a.handleSessionEnd)))
	mux.Handle("POST /v1/ssh/certificate", a.auth(apiv1.RoleTechnician, a.handleSSHCert))
	mux.Handle("POST /v1/agent/ssh-host-cert", a.agentAuth(a.handleAgentSSH))
}

// handleSessionConnect checks a session request, upgrades to a websocket and
// hands it to the broker, which runs the session on this goroutine.
func (a *API) handleSessionConnect(w http.ResponseWriter, r *http.Request, c caller) {
	if a.Sessions == nil || a.SSH == nil {
		WriteError(w, http.StatusServiceUnavailable, "sessions are not enabled on this relay")
		return
	}
	if !wire.ValidTechnician(c.tok.Name) {
		WriteError(w, http.StatusForbidden, "API token name %q cannot name a technician in SSH certificates: create a token named with [A-Za-z0-9_.@-]", c.tok.Name)
		return
	}
	q := r.URL.Query()
	caps := splitList(q.Get("capabilities"))
	if len(caps) == 0 {
		caps = []string{wire.CapShell}
	}
	if err := wire.ValidCapabilities(caps); err != nil {
		WriteError(w, http.StatusBadRequest, "capabilities: %v", err)
		return
	}
	reason := strings.TrimSpace(q.Get("reason"))
	if reason == "" && !a.AllowEmptyReason {
		WriteError(w, http.StatusBadRequest, "session request: a reason is required, and the user at the machine is shown it: "+
			"pass --reason (patchbay ssh, patchbay proxy) or set $PATCHBAY_REASON (OpenSSH through patchbay proxy)")
		return
	}
	req := wire.SessionRequest{SessionID: "00000000-0000-0000-0000-000000000000", Technician: c.tok.Name, Reason: reason, Capabilities: caps}
	if err := req.Validate(); err != nil {
		WriteError(w, http.StatusBadRequest, "session request: %v", err)
		return
	}
	ag, ok := a.findAgent(w, r, c)
	if !ok {
		return
	}
	if !ag.RevokedAt.IsZero() {
		WriteError(w, http.StatusConflict, "agent %s (%s) is revoked", ag.ID, ag.Hostname)
		return
	}
	if !a.Hub.Online(ag.ID) {
		WriteError(w, http.StatusConflict, "agent %s (%s) is offline: it must be connected to a relay for a session", ag.ID, ag.Hostname)
		return
	}
	if !slices.Contains(websocket.Subprotocols(r), apiv1.SessionSubprotocol) {
		WriteError(w, http.StatusBadRequest, "session: the websocket subprotocol must be %q", apiv1.SessionSubprotocol)
		return
	}
	if h, ok := a.Hub.(interface{ Here(id string) bool }); ok && !h.Here(ag.ID) {
		// Another relay of the tier holds the agent: the caller is
		// authorised here, and the relay that holds it authorises the same
		// credential again and runs the session. A forwarded request is
		// never forwarded again.
		if a.Forward == nil || r.Header.Get(HeaderRelay) != "" {
			WriteError(w, http.StatusConflict, "agent %s (%s) is connected to another relay of this tier, which cannot take the session from here; "+
				"try again (it may have just moved), or open the session through the relay that holds it", ag.ID, ag.Hostname)
			return
		}
		a.Forward.ForwardSession(w, r, ag.ID)
		return
	}
	ws, err := sessionUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	// The session outlives http.Server's write timeout: clear the deadlines
	// the server set on the connection; the broker sets its own.
	ws.NetConn().SetDeadline(time.Time{})
	_ = a.Sessions.Serve(r.Context(), ws, sessions.Request{
		AgentID: ag.ID, Hostname: ag.Hostname, Technician: c.tok.Name, TokenID: c.tok.ID, Actor: c.actor(), Reason: reason, Capabilities: caps,
	})
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func sessionJSON(s store.Session) apiv1.Session {
	out := apiv1.Session{
		ID: s.ID, AgentID: s.AgentID, Hostname: s.Hostname, Technician: s.Technician, Reason: s.Reason,
		State: s.State, Capabilities: s.Capabilities, Granted: s.Granted, Requested: s.RequestedAt,
		Message: s.Message, EndBy: s.EndBy, EndReason: s.EndReason, RecordingSize: s.RecordingSize,
		Consent: apiv1.Consent{Mode: s.ConsentMode, Backend: s.ConsentBackend, By: s.ConsentBy},
	}
	if out.Capabilities == nil {
		out.Capabilities = []string{}
	}
	switch s.State {
	case store.SessionRequested:
		out.Consent.Decision = "pending"
	case store.SessionDenied:
		out.Consent.Decision = "denied"
	case store.SessionFailed:
		out.Consent.Decision = "failed"
		if s.ConsentMode != "" {
			out.Consent.Decision = "denied"
		}
	default:
		out.Consent.Decision = "approved"
	}
	if !s.StartedAt.IsZero() {
		t := s.StartedAt
		out.Started = &t
	}
	if !s.EndedAt.IsZero() {
		t := s.EndedAt
		out.Ended = &t
	}
	return out
}

// handleSessionList lists sessions, newest first: ?agent=ID, ?limit=N (default 100, at most 1000).
func (a *API) handleSessionList(w http.ResponseWriter, r *http.Request, c caller) {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			WriteError(w, http.StatusBadRequest, "limit %q: want a number from 1 to 1000", s)
			return
		}
		limit = n
	}
	agent := r.URL.Query().Get("agent")
	if agent != "" && !wire.ValidUUID(agent) {
		WriteError(w, http.StatusBadRequest, "agent %q: want an agent ID", agent)
		return
	}
	list, err := a.Store.ListSessions(r.Context(), c.scope(), agent, limit)
	if err != nil {
		a.internal(w, r, "list sessions", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "list sessions", err)
		return
	}
	out := make([]apiv1.Session, 0, len(list))
	for _, s := range list {
		j := sessionJSON(s)
		j.Site = names.name(s.SiteID)
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleSessionShow answers one session. While the endpoint asks a person
// at the machine, its consent says who and until when.
func (a *API) handleSessionShow(w http.ResponseWriter, r *http.Request, c caller) {
	s, ok := a.findSession(w, r, c)
	if !ok {
		return
	}
	out := sessionJSON(s)
	if s.State == store.SessionRequested && a.Sessions != nil {
		if deadline, asking, ok := a.Sessions.Waiting(s.ID); ok {
			left := max(0, int(deadline.Sub(a.now()).Round(time.Second)/time.Second))
			d := deadline.UTC()
			out.Consent.Asking, out.Consent.Deadline, out.Consent.SecondsLeft = asking, &d, &left
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleSessionRecording sends a session's asciicast v2 recording (what is
// stored so far, for a live session).
func (a *API) handleSessionRecording(w http.ResponseWriter, r *http.Request, c caller) {
	s, ok := a.findSession(w, r, c)
	if !ok || a.Sessions == nil {
		return
	}
	if !apiv1.CanReadRecordings(c.tok.Role) && s.Technician != c.tok.Name {
		WriteError(w, http.StatusForbidden, "the recording of session %s is readable by its technician (%s), auditors and admins; you are %s (%s)",
			shortID(s.ID), s.Technician, c.tok.Name, c.tok.Role)
		return
	}
	f, err := a.Sessions.OpenRecording(r.Context(), s.ID)
	if errors.Is(err, os.ErrNotExist) {
		WriteError(w, http.StatusNotFound, "session %s has no recording (only sessions with a terminal are recorded)", s.ID)
		return
	}
	if err != nil {
		a.internal(w, r, "open recording", err)
		return
	}
	defer f.Close()
	if err := a.audit(r.Context(), c.actor(), "session.recording.read", s.ID, map[string]string{"site": s.SiteID}); err != nil {
		a.internal(w, r, "read recording", err)
		return
	}
	w.Header().Set("Content-Type", "application/x-asciicast")
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, s.ID+".cast", time.Time{}, f)
}

// handleSessionEnd ends a live session on behalf of the caller.
func (a *API) handleSessionEnd(w http.ResponseWriter, r *http.Request, c caller) {
	var body apiv1.SessionEnd
	if r.ContentLength != 0 && !decode(w, r, &body) {
		return
	}
	s, ok := a.findSession(w, r, c)
	if !ok || a.Sessions == nil {
		return
	}
	if c.tok.Role != apiv1.RoleAdmin && c.tok.Name != s.Technician {
		WriteError(w, http.StatusForbidden, "session %s belongs to %s: only they or an admin can end it", s.ID, s.Technician)
		return
	}
	reason := strings.TrimSpace(body.Reason)
	if reason == "" {
		reason = "ended by " + c.tok.Name
	}
	if err := (&wire.SessionEnd{SessionID: s.ID, Reason: reason}).Validate(); err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if !a.Sessions.End(s.ID, c.tok.Role, reason) {
		if a.forwardSessionEnd(w, r, s, reason) {
			return
		}
		WriteError(w, http.StatusConflict, "session %s is not live on this relay (state %s)", s.ID, s.State)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "session.end.request", s.ID, map[string]string{"reason": reason, "site": s.SiteID}); err != nil {
		a.internal(w, r, "end session", err)
		return
	}
	writeJSON(w, http.StatusAccepted, sessionJSON(s))
}

// forwardSessionEnd passes the end of a session that is not live here to
// the relay of the tier that brokers it: the relay that holds its agent
// (a session runs over the agent's link), which authorises the caller's
// credential again, ends the session and audits the request as on a relay
// alone. It reports whether it answered w. A request forwarded already is
// never forwarded again.
func (a *API) forwardSessionEnd(w http.ResponseWriter, r *http.Request, s store.Session, reason string) bool {
	h, ok := a.Hub.(interface{ Here(id string) bool })
	if !ok || a.Forward == nil || r.Header.Get(HeaderRelay) != "" || h.Here(s.AgentID) || !a.Hub.Online(s.AgentID) {
		return false
	}
	if s.State != store.SessionRequested && s.State != store.SessionApproved {
		return false
	}
	raw, err := json.Marshal(apiv1.SessionEnd{Reason: reason})
	if err != nil {
		return false
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
	r.Header.Set("Content-Type", "application/json")
	a.Forward.ForwardSession(w, r, s.AgentID)
	return true
}

// handleSSHCert certifies a technician's SSH public key for a few hours. The
// certificate's key ID and only principal are the API token's name.
func (a *API) handleSSHCert(w http.ResponseWriter, r *http.Request, c caller) {
	if a.SSH == nil {
		WriteError(w, http.StatusServiceUnavailable, "SSH certificates are not enabled on this relay")
		return
	}
	var body apiv1.SSHCertRequest
	if !decode(w, r, &body) {
		return
	}
	if !wire.ValidTechnician(c.tok.Name) {
		WriteError(w, http.StatusForbidden, "API token name %q cannot name a technician: create a token named with [A-Za-z0-9_.@-]", c.tok.Name)
		return
	}
	pub, ok := plainPublicKey(w, body.PublicKey)
	if !ok {
		return
	}
	ttl := apiv1.DefaultSSHCertTTL
	var err error
	if body.TTL != "" {
		if ttl, err = apiv1.ParseTTL(body.TTL, apiv1.MaxSSHCertTTL); err != nil {
			WriteError(w, http.StatusBadRequest, "ttl: %v", err)
			return
		}
	}
	now := a.now()
	cert, err := a.SSH.SignUserCert(pub, c.tok.Name, ttl, now)
	if err != nil {
		a.internal(w, r, "sign SSH certificate", err)
		return
	}
	// Recorded before it is handed out, so that revoking the token revokes
	// it at the agents; then the token is checked again: a revocation that
	// ran between the first check and the record did not see this one.
	if err := a.Store.RecordSSHCert(r.Context(), store.SSHCert{Serial: cert.Serial, KeyID: cert.KeyId, TokenID: c.tok.ID,
		IssuedAt: now, ValidBefore: time.Unix(int64(cert.ValidBefore), 0).UTC()}); err != nil {
		a.internal(w, r, "sign SSH certificate", err)
		return
	}
	if ok, err := a.Store.APITokenActive(r.Context(), c.tok.ID, now); err != nil {
		a.internal(w, r, "sign SSH certificate", err)
		return
	} else if !ok {
		WriteError(w, http.StatusUnauthorized, "API token %s was revoked while its SSH certificate was being issued", c.tok.Name)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "ssh-cert.issue", c.tok.Name, map[string]string{
		"fingerprint": ssh.FingerprintSHA256(pub), "valid_before": time.Unix(int64(cert.ValidBefore), 0).UTC().Format(time.RFC3339),
		"serial": strconv.FormatUint(cert.Serial, 10),
	}); err != nil {
		a.internal(w, r, "sign SSH certificate", err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.SSHCert{
		Certificate: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert))),
		KeyID:       cert.KeyId, ValidBefore: time.Unix(int64(cert.ValidBefore), 0).UTC(),
		KnownHosts: a.SSH.KnownHostsLine(),
		UserCA:     strings.TrimSpace(string(ssh.MarshalAuthorizedKey(a.SSH.UserCAKey()))),
	})
}

// handleAgentSSH certifies an agent's SSH host key (mutual TLS) and tells it
// the user CA whose certificates it accepts.
func (a *API) handleAgentSSH(w http.ResponseWriter, r *http.Request, ag store.Agent) {
	if a.SSH == nil {
		WriteError(w, http.StatusServiceUnavailable, "SSH certificates are not enabled on this relay")
		return
	}
	var body apiv1.AgentSSHRequest
	if !decode(w, r, &body) {
		return
	}
	pub, ok := plainPublicKey(w, body.PublicKey)
	if !ok {
		return
	}
	principals := []string{ag.ID, ag.ID + ".patchbay"}
	if h := strings.ToLower(ag.Hostname); h != "" && wire.ValidTechnician(h) {
		principals = append(principals, h+".patchbay")
	}
	cert, err := a.SSH.SignHostCert(pub, ag.ID, principals, hostCertTTL, a.now())
	if err != nil {
		a.internal(w, r, "sign host certificate", err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.AgentSSH{
		HostCertificate: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert))),
		UserCA:          strings.TrimSpace(string(ssh.MarshalAuthorizedKey(a.SSH.UserCAKey()))),
	})
}

// sshUserCA is the user CA in authorized_keys format ("" without SSH).
func (a *API) sshUserCA() string {
	if a.SSH == nil {
		return ""
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(a.SSH.UserCAKey())))
}

// plainPublicKey parses an OpenSSH public key (authorized_keys format) that
// is not a certificate; on failure it has answered 400.
func plainPublicKey(w http.ResponseWriter, s string) (ssh.PublicKey, bool) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "public_key: not an OpenSSH public key: %v", err)
		return nil, false
	}
	if _, isCert := pub.(*ssh.Certificate); isCert {
		WriteError(w, http.StatusBadRequest, "public_key: send the plain public key, not a certificate")
		return nil, false
	}
	return pub, true
}
