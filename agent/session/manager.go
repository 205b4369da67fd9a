// Package session is the agent's side of interactive sessions: it takes a
// technician's request from the relay, lets the endpoint's own consent
// policy decide (agent/consent), and serves SSH (agent/sshd) on the stream
// the relay opens for an approved session, recording PTY sessions to a
// stream of their own back to the relay.
//
// Rules the agent enforces, whatever the relay says:
//   - a session stream is served only for a request this agent approved, once,
//     within StreamWait of the approval;
//   - the SSH client must present a user certificate from the user CA pinned
//     in the data directory, whose key ID is the technician the user approved;
//   - only the capabilities the user approved are allowed;
//   - the user can end a live session at any time (the web page, or
//     "patchbay-agent sessions end"), and so can the limits (idle, maximum);
//   - a certificate the relay revoked (ssh_revoked: the technician's API token
//     was revoked) is refused, and a live session that authenticated with it
//     ends at once. The list is kept in memory only; the relay sends it whole
//     on every connection.
//
// Every decision (approved, denied, timed out) and every end of a session
// is signed with the agent's key (internal/receipt) and sent with the
// answer or the end, so the relay's audit log holds evidence it cannot
// forge. While a person is being asked, the manager tells the relay until
// when (session_pending), so the technician sees the wait.
//
// Ownership: the Manager owns one goroutine per pending decision and per
// live session; Close cancels them and waits. Control and HandleStream are
// called from the link and never block on a decision or a session.
package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/agent/desktop"
	"github.com/patchbay/patchbay/agent/sshd"
	"github.com/patchbay/patchbay/internal/asciicast"
	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/receipt"
	"github.com/patchbay/patchbay/internal/wire"
)

// Defaults for Config fields left zero.
const (
	DefaultIdleTimeout = 15 * time.Minute
	DefaultMaxDuration = 4 * time.Hour
	// StreamWait is how long an approval waits for the relay's stream.
	StreamWait = 30 * time.Second
)

// Keys are the SSH keys a session needs: the agent's certified host key and
// the user CA it accepts.
type Keys struct {
	Host   ssh.Signer
	UserCA ssh.PublicKey
}

// Config configures a Manager.
type Config struct {
	AgentID, Hostname string
	Consent           *consent.Consent
	Mode              consent.Mode
	// Keys returns the current SSH keys; an error refuses sessions with it.
	Keys func() (Keys, error)
	// Send sends a control message to the relay (fails while offline).
	Send func(typ string, body any) error
	// Open opens a stream to the relay (for recordings).
	Open func(ctx context.Context, kind string) (io.WriteCloser, error)
	// Cert is the agent's client certificate (identity.Cert): its key signs
	// consent receipts. Without one (or when signing fails) every request
	// is denied: the relay refuses unsigned answers.
	Cert tls.Certificate

	Shell       string           // default: the user's shell, else /bin/sh
	Credential  *sshd.Credential // run sessions as this local user; nil: the agent's own account
	IdleTimeout time.Duration    // default DefaultIdleTimeout; negative: none
	StreamWait  time.Duration    // default StreamWait
	MaxDuration time.Duration    // default DefaultMaxDuration; negative: none
	// Desktop is the endpoint's desktop settings, for sessions approved
	// for wire.CapDesktop or wire.CapDesktopView (agent/desktop).
	Desktop desktop.Config
	Log     zerolog.Logger
}

// Manager runs the agent's sessions. It is safe for concurrent use.
type Manager struct {
	cfg    Config
	signer *receipt.Signer // from cfg.Cert; nil without one
	// revoked holds the SSH certificate serials the relay revoked (in
	// memory: the relay sends the whole list again on every connection).
	revoked *sshd.Revocations

	mu       sync.Mutex
	sessions map[string]*entry // by session ID: deciding, approved (awaiting the stream) or live
	closed   bool
	wg       sync.WaitGroup
	ctx      context.Context // parent of every session's context; cancelled by Close
	cancel   context.CancelFunc
}

type entryState int

const (
	deciding entryState = iota
	approved
	live
)

// entry is one session on this agent.
type entry struct {
	req     wire.SessionRequest
	state   entryState
	granted []string
	started time.Time
	cancel  context.CancelCauseFunc // ends the decision or the session
	expiry  *time.Timer             // approved: the stream must come before it fires
}

// New returns a manager.
func New(cfg Config) *Manager {
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxDuration == 0 {
		cfg.MaxDuration = DefaultMaxDuration
	}
	if cfg.StreamWait <= 0 {
		cfg.StreamWait = StreamWait
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{cfg: cfg, sessions: map[string]*entry{}, ctx: ctx, cancel: cancel, revoked: sshd.NewRevocations(nil)}
	if cfg.Cert.PrivateKey != nil {
		m.signer = receipt.NewSigner(cfg.Cert)
	}
	return m
}

func positive(d time.Duration) time.Duration { return max(d, 0) }

// Control handles the relay's session messages; it reports false for other
// types. A malformed message closes the link.
func (m *Manager) Control(env wire.Envelope) (bool, error) {
	switch env.Type {
	case wire.MsgSessionRequest:
		var req wire.SessionRequest
		if err := wire.DecodeBody(env, &req); err != nil {
			return true, &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		m.request(req)
		return true, nil
	case wire.MsgSessionEnd:
		var end wire.SessionEnd
		if err := wire.DecodeBody(env, &end); err != nil {
			return true, &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		reason := end.Reason
		if reason == "" {
			reason = "ended on the relay"
		}
		if end.By != "" {
			reason = fmt.Sprintf("%s (%s)", reason, end.By)
		}
		m.end(end.SessionID, errors.New(reason))
		return true, nil
	case wire.MsgSSHRevoked:
		var rev wire.SSHRevoked
		if err := wire.DecodeBody(env, &rev); err != nil {
			return true, &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		m.revoke(rev)
		return true, nil
	}
	return false, nil
}

// revoke records certificates the relay revoked: live sessions that
// authenticated with one end at once (agent/sshd tells the technician why).
func (m *Manager) revoke(rev wire.SSHRevoked) {
	added, full := m.revoked.Add(rev.Certs)
	if added == 0 && !full {
		return
	}
	ev := m.cfg.Log.Info()
	if full {
		ev = m.cfg.Log.Error().Int("limit", sshd.MaxRevocations)
	}
	serials := make([]string, 0, min(len(rev.Certs), 10))
	for _, c := range rev.Certs[:min(len(rev.Certs), 10)] {
		serials = append(serials, fmt.Sprintf("%d (%s)", c.Serial, c.KeyID))
	}
	ev.Int("added", added).Int("revoked", m.revoked.Len()).Strs("serials", serials).
		Msg("SSH certificates revoked by the relay; sessions using them end now")
}

// request starts a decision on a new request.
func (m *Manager) request(req wire.SessionRequest) {
	log := m.cfg.Log.With().Str("session_id", req.SessionID).Str("technician", req.Technician).Logger()
	m.mu.Lock()
	if m.closed || m.sessions[req.SessionID] != nil {
		m.mu.Unlock()
		return // shutting down, or a duplicate request
	}
	ctx, cancel := context.WithCancelCause(m.ctx)
	e := &entry{req: req, state: deciding, cancel: cancel}
	m.sessions[req.SessionID] = e
	m.wg.Add(1)
	m.mu.Unlock()
	log.Info().Str("reason", req.Reason).Strs("capabilities", req.Capabilities).Msg("session requested")
	go func() {
		defer m.wg.Done()
		d := m.cfg.Consent.Decide(ctx, consent.Request{
			SessionID: req.SessionID, AgentID: m.cfg.AgentID, Hostname: m.cfg.Hostname,
			Technician: req.Technician, Reason: req.Reason, Capabilities: req.Capabilities,
			OnAsk: func(deadline time.Time, asking string) {
				p := wire.SessionPending{SessionID: req.SessionID, Deadline: deadline.UTC(), Asking: asking}
				if p.Validate() != nil {
					p.Asking = ""
				}
				if err := m.cfg.Send(wire.MsgSessionPending, p); err != nil {
					log.Debug().Err(err).Msg("could not tell the relay that the user is being asked")
				}
			},
		})
		if d.Approved && ctx.Err() != nil {
			d.Approved, d.Message = false, "withdrawn: "+context.Cause(ctx).Error()
		}
		ans := wire.SessionAnswer{
			SessionID: req.SessionID, Approved: d.Approved, Mode: string(d.Mode), Backend: d.Backend, By: d.By,
			Message: d.Message, MaxDuration: wire.Duration(positive(m.cfg.MaxDuration)), IdleTimeout: wire.Duration(positive(m.cfg.IdleTimeout)),
		}
		if ans.Mode == "" {
			ans.Mode = string(m.cfg.Mode)
		}
		if d.Approved {
			ans.Capabilities = granted(req.Capabilities, d.Choice)
		}
		if err := ans.Validate(); err != nil { // a consent backend said something unsendable
			ans.Message = "(message withheld: " + err.Error() + ")"
		}
		signed, err := m.sign(req, ans.Approved, ans.By, ans.Message, ans.Capabilities, d.At)
		if err != nil {
			log.Error().Err(err).Msg("could not sign the consent decision; the request is denied")
			d.Approved = false
			ans.Approved, ans.Capabilities, ans.Message = false, nil, "the agent could not sign its decision"
		} else {
			ans.Receipt = &signed
		}
		m.mu.Lock()
		if d.Approved {
			e.state, e.granted = approved, ans.Capabilities
			e.expiry = time.AfterFunc(m.cfg.StreamWait, func() { m.end(req.SessionID, errors.New("the relay never opened the session stream")) })
		} else {
			delete(m.sessions, req.SessionID)
			cancel(nil)
		}
		m.mu.Unlock()
		if err := m.cfg.Send(wire.MsgSessionAnswer, ans); err != nil {
			log.Warn().Err(err).Msg("could not send the consent answer to the relay")
			m.end(req.SessionID, errors.New("relay unreachable"))
			return
		}
		log.Info().Bool("approved", d.Approved).Str("by", d.By).Str("backend", d.Backend).Str("message", d.Message).Msg("consent decided")
	}()
}

// end ends a session in whatever state it is: withdraws a prompt, forgets
// an approval, or ends a live session with cause.
func (m *Manager) end(id string, cause error) bool {
	m.mu.Lock()
	e := m.sessions[id]
	if e == nil {
		m.mu.Unlock()
		return false
	}
	if e.state != live {
		delete(m.sessions, id)
		if e.expiry != nil {
			e.expiry.Stop()
		}
	}
	cancel := e.cancel
	m.mu.Unlock()
	cancel(cause)
	return true
}

// HandleStream serves a stream the relay opened. Only the SSH stream of an
// approved session is served; anything else is closed at once.
func (m *Manager) HandleStream(st *mux.Stream) {
	what, id, ok := wire.ParseSessionStreamKind(st.Kind())
	log := m.cfg.Log.With().Str("kind", st.Kind()).Logger()
	if !ok || what != "ssh" {
		log.Warn().Msg("relay opened a stream of unknown kind; closed")
		st.Close()
		return
	}
	m.mu.Lock()
	e := m.sessions[id]
	if e == nil || e.state != approved {
		m.mu.Unlock()
		log.Warn().Str("session_id", id).Msg("relay opened a session stream this agent did not approve; closed")
		st.Close()
		return
	}
	e.state, e.started = live, time.Now()
	e.expiry.Stop()
	m.mu.Unlock()
	m.serve(st, e)
}

// serve runs one approved session on st (on the stream's own goroutine).
func (m *Manager) serve(st net.Conn, e *entry) {
	id := e.req.SessionID
	log := m.cfg.Log.With().Str("session_id", id).Str("technician", e.req.Technician).Logger()
	ctx, cancel := context.WithCancelCause(m.ctx)
	m.mu.Lock()
	e.cancel = cancel
	m.mu.Unlock()
	defer cancel(nil)
	m.cfg.Consent.Started(consent.Live{ID: id, Technician: e.req.Technician, Reason: e.req.Reason, Capabilities: e.granted, Started: e.started})
	by, reason := "technician", "the technician disconnected"
	keys, err := m.cfg.Keys()
	if err == nil {
		cfg := sshd.Config{
			HostSigner: keys.Host, UserCA: keys.UserCA, Technician: e.req.Technician, Capabilities: e.granted,
			Shell: m.cfg.Shell, Credential: m.cfg.Credential,
			IdleTimeout: positive(m.cfg.IdleTimeout), MaxDuration: positive(m.cfg.MaxDuration),
			Record: func(h asciicast.Header) (io.WriteCloser, error) {
				w, err := m.cfg.Open(ctx, wire.RecordingStreamKind(id))
				if err != nil {
					return nil, err
				}
				return newBatchedWriter(w), nil
			},
			Revocations: m.revoked,
			Log:         log,
		}
		if slices.Contains(e.granted, wire.CapDesktop) || slices.Contains(e.granted, wire.CapDesktopView) {
			d := desktop.New(desktop.Options{Config: m.cfg.Desktop, ViewOnly: !slices.Contains(e.granted, wire.CapDesktop),
				Credential: (*desktop.Credential)(m.cfg.Credential), Log: log.With().Str("component", "desktop").Logger()})
			// Stopped when serve returns, after the end of the session is
			// reported below: x11vnc may take seconds to exit, and the
			// relay gives the agent's reason only a short grace after the
			// stream closes (else it records "the SSH session ended").
			defer d.Stop()
			cfg.Desktop = d
			cfg.ViewOnlyCopy = desktop.CopyViewOnly
		}
		err = sshd.Serve(ctx, st, cfg)
	} else {
		st.Close()
		err = fmt.Errorf("ssh keys: %w", err)
	}
	switch {
	case err == nil:
	case errors.Is(err, sshd.ErrIdle):
		by, reason = "idle", err.Error()
	case errors.Is(err, sshd.ErrMaxDuration):
		by, reason = "limit", err.Error()
	case errors.Is(err, sshd.ErrRevoked):
		by, reason = "revoked", err.Error()
	case context.Cause(ctx) != nil && errors.Is(err, context.Cause(ctx)):
		by, reason = "endpoint", err.Error()
		var ue *userEnd
		if errors.As(err, &ue) {
			by = "user"
		}
	default:
		by, reason = "agent", err.Error()
	}
	m.mu.Lock()
	delete(m.sessions, id)
	m.mu.Unlock()
	end := wire.SessionEnd{SessionID: id, By: by, Reason: reason}
	if end.Validate() != nil {
		end.Reason = "session ended"
	}
	if signed, err := m.signEnd(e, by, end.Reason); err != nil {
		log.Error().Err(err).Msg("could not sign the end of the session")
	} else {
		end.Receipt = &signed
	}
	_ = m.cfg.Send(wire.MsgSessionEnd, end)
	m.cfg.Consent.Ended(id, reason)
	log.Info().Str("by", by).Str("reason", reason).Msg("session ended")
}

// granted is what an approval grants of the capabilities asked for: with
// consent.ChoiceViewOnly, wire.CapDesktopView in place of wire.CapDesktop.
func granted(asked []string, choice string) []string {
	if choice != consent.ChoiceViewOnly {
		return asked
	}
	out := make([]string, 0, len(asked))
	for _, c := range asked {
		if c == wire.CapDesktop {
			c = wire.CapDesktopView
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// sign signs a consent decision on req.
func (m *Manager) sign(req wire.SessionRequest, approved bool, by, message string, caps []string, at time.Time) (receipt.Signed, error) {
	r := receipt.Receipt{Kind: receipt.KindSession, ID: req.SessionID, AgentID: m.cfg.AgentID, Technician: req.Technician,
		Reason: req.Reason, Capabilities: caps, Decision: receipt.Denied, By: by, Message: message, Time: at}
	if approved {
		r.Decision = receipt.Approved
	} else {
		r.Capabilities = req.Capabilities // what was refused
	}
	return m.signReceipt(r)
}

// signEnd signs the end of a live session.
func (m *Manager) signEnd(e *entry, by, reason string) (receipt.Signed, error) {
	return m.signReceipt(receipt.Receipt{Kind: receipt.KindSession, ID: e.req.SessionID, AgentID: m.cfg.AgentID,
		Technician: e.req.Technician, Reason: e.req.Reason, Capabilities: e.granted, Decision: receipt.Ended,
		By: by, Message: reason, Time: time.Now()})
}

func (m *Manager) signReceipt(r receipt.Receipt) (receipt.Signed, error) {
	if m.signer == nil {
		return receipt.Signed{}, errors.New("sign consent receipt: the agent's certificate is not configured")
	}
	if r.By == "" {
		r.By = consent.ByAgent
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	return m.signer.Sign(r)
}

// userEnd is the cause of a session the person at the machine ended.
type userEnd struct{ by string }

func (e *userEnd) Error() string { return "ended by the user at the machine" }

// Live lists the live sessions (consent.Sessions).
func (m *Manager) Live() []consent.Live {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []consent.Live
	for id, e := range m.sessions {
		if e.state == live {
			out = append(out, consent.Live{ID: id, Technician: e.req.Technician, Reason: e.req.Reason, Capabilities: e.granted, Started: e.started})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// ErrNoSession is returned by End for a session that is not live here.
var ErrNoSession = errors.New("no such live session")

// End ends a live session on behalf of the person at the machine
// (consent.Sessions). id "all" ends every live session. Approvals the
// consent policy remembers (Policy.Remember) are forgotten either way.
func (m *Manager) End(id, by string) error {
	// Whoever ends a session wants the next request asked again.
	if m.cfg.Consent != nil {
		m.cfg.Consent.Forget()
	}
	if id == "all" {
		for _, l := range m.Live() {
			m.end(l.ID, &userEnd{by: by})
		}
		return nil
	}
	m.mu.Lock()
	e := m.sessions[id]
	m.mu.Unlock()
	if e == nil || e.state != live {
		return fmt.Errorf("session %s: %w", id, ErrNoSession)
	}
	m.end(id, &userEnd{by: by})
	return nil
}

// Close ends every session and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}
