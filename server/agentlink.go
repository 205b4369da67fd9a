package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/hub"
	"github.com/patchbay/patchbay/server/metrics"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// Subprotocol is the websocket subprotocol of an agent link.
const Subprotocol = "patchbay.v1"

// handshakeTimeout bounds the time from upgrade to the agent's hello.
const handshakeTimeout = 10 * time.Second

// upgrader is shared by all agent links. Write buffers come from a pool, so
// an idle link holds none; the read buffer is small because large frames are
// read straight into the session's buffer.
var upgrader = websocket.Upgrader{
	HandshakeTimeout: handshakeTimeout,
	ReadBufferSize:   1024,
	WriteBufferSize:  32 << 10,
	WriteBufferPool:  &sync.Pool{},
	Subprotocols:     []string{Subprotocol},
	// Agents are not browsers: any Origin header means something else is
	// trying to ride an agent's credentials.
	CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "" },
	Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
		api.WriteError(w, status, "agent link: %v", reason)
	},
}

// verifiedAgentID returns the agent ID of a request's verified client
// certificate. A certificate from another CA is not sent by Go clients at
// all, so "no verified chain" covers both missing and foreign certificates.
func verifiedAgentID(cs *tls.ConnectionState) (string, error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return "", errors.New("no client certificate from this relay's CA: enroll the agent first (patchbay-agent enroll)")
	}
	return certs.AgentID(cs.PeerCertificates[0])
}

// verifyConnection is the TLS hook that refuses revoked agents during the
// handshake, before any HTTP is read.
func (s *Server) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.VerifiedChains) == 0 {
		return nil // enrollment and the technician API come without a client certificate
	}
	if certs.IsRelayCert(cs.PeerCertificates[0]) {
		return nil // another relay of the tier, forwarding a session (api.HeaderRelay)
	}
	id, err := certs.AgentID(cs.PeerCertificates[0])
	if err != nil {
		return err
	}
	if s.hub.IsRevoked(id) {
		s.log.Info().Str("agent_id", id).Msg("refused revoked agent at the TLS handshake")
		return fmt.Errorf("agent %s is revoked", id)
	}
	return nil
}

// handleAgentConnect upgrades an authenticated agent to a link and returns,
// so that net/http's per-request state is freed while the link lives on. A
// goroutine of the link's greets the agent, then hands the greeted link to
// Accept on a fresh goroutine and exits.
//
// The hand-over is about memory. A goroutine's stack grows to the deepest
// call it ever made, and an idle link's stack is not shrunk once it grew to
// 8 KiB (waiting for a frame uses more than a quarter of it). The greeting
// (JSON decoding, TLS writes, the hub) runs deep; waiting for frames does
// not, so the goroutine that holds the link for days starts small. At 19,000
// agents this took the relay's goroutine stacks from 160 MB to about 90 MB.
func (s *Server) handleAgentConnect(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	id, err := verifiedAgentID(r.TLS)
	if err != nil {
		api.WriteError(w, http.StatusUnauthorized, "agent link: %v", err)
		return
	}
	if s.hub.IsRevoked(id) {
		api.WriteError(w, http.StatusForbidden, "agent link: agent %s is revoked; enroll it again with a new token", id)
		return
	}
	if !slices.Contains(websocket.Subprotocols(r), Subprotocol) {
		api.WriteError(w, http.StatusBadRequest, "agent link: the websocket subprotocol must be %q", Subprotocol)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered the client
	}
	if !s.links.start() {
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "relay shutting down"), time.Now().Add(time.Second))
		ws.Close()
		return
	}
	go func() {
		c, err := s.greet(ws, id)
		if err != nil {
			s.links.done()
			return
		}
		go func() {
			defer s.links.done()
			s.Accept(ctx, c)
		}()
	}()
}

// agentConn is one agent's link, as registered in the hub.
type agentConn struct {
	id   string
	sess *mux.Session
	// welcomed is set once the welcome is sent: the agent takes no other
	// message before it, so Send refuses until then (a broadcast skips the
	// link; greet sends what it must know right after the welcome).
	welcomed atomic.Bool
	out      outbox // control messages Send queued for the link's writer
}

// log returns a logger for one event of the link. It is built per event, not
// held for the link's lifetime: an idle link should cost as little memory as
// possible.
func (c *agentConn) log(s *Server) zerolog.Logger {
	return s.log.With().Str("agent_id", c.id).Str("remote", c.sess.RemoteAddr().String()).Logger()
}

func (c *agentConn) AgentID() string { return c.id }

func (c *agentConn) Close(reason string) { c.sess.Close(websocket.ClosePolicyViolation, reason) }

// Send queues a control message for the link's writer and returns at once:
// the caller never waits on this agent's network (see outbox.go).
func (c *agentConn) Send(typ string, body any) error {
	if !c.welcomed.Load() {
		return hub.ErrOffline
	}
	env, err := wire.NewEnvelope(typ, "", body)
	if err != nil {
		return err
	}
	return c.out.send(c.sess, env)
}

func (c *agentConn) Open(ctx context.Context, kind string) (*mux.Stream, error) {
	return c.sess.Open(ctx, kind)
}

// greet reads the agent's hello on a new link, registers the agent in the
// hub and answers with welcome. On error the link is closed (with the reason
// in the websocket close frame) and the agent is not registered.
func (s *Server) greet(ws *websocket.Conn, agentID string) (*agentConn, error) {
	c := &agentConn{id: agentID}
	c.sess = mux.New(ws, mux.Config{
		ReadTimeout:  3 * s.cfg.Heartbeat,
		WriteTimeout: linkWriteTimeout,
		Control:      func(env wire.Envelope) error { return s.control(c, env) },
		// The agent opens streams only to upload session recordings.
		Handle: func(st *mux.Stream) { s.sessions.HandleStream(agentID, st) },
	})
	hello, err := s.handshake(c.sess)
	if err != nil {
		logLinkEnd(c.log(s), "agent handshake failed", err)
		return nil, err
	}
	if err := s.hub.Register(c); err != nil {
		c.sess.Close(websocket.ClosePolicyViolation, err.Error())
		l := c.log(s)
		l.Warn().Err(err).Msg("agent refused")
		return nil, err
	}
	s.checks.newLink(c.id)
	now := time.Now()
	err = c.sess.Send(wire.MsgWelcome, "", wire.Welcome{
		Proto: wire.Proto, AgentID: agentID, Heartbeat: wire.Duration(s.cfg.Heartbeat), ServerTime: now,
		ReconnectWindow: wire.Duration(reconnectWindow(max(s.hub.Count(), s.fleet), s.cfg.ReconnectRate)),
	})
	if err == nil {
		// Revoked SSH certificates: after welcomed is set, so that a
		// revocation published meanwhile reaches this agent either by the
		// broadcast or in this list (it is updated before the broadcast).
		c.welcomed.Store(true)
		err = s.access.Greet(c.sess.SendControl)
	}
	if err != nil {
		s.unregister(c)
		c.sess.Close(websocket.CloseGoingAway, "")
		c.out.close()
		logLinkEnd(c.log(s), "agent disconnected", err)
		return nil, err
	}
	s.metrics.LinkOpened()
	s.seen.inventory(agentID, hello.Inventory, now)
	s.jobs.AgentOnline(agentID)
	if l := c.log(s); l.Debug().Enabled() {
		resumed := false
		if tc, ok := ws.NetConn().(*tls.Conn); ok {
			resumed = tc.ConnectionState().DidResume
		}
		l.Debug().Str("hostname", hello.Inventory.Hostname).Bool("tls_resumed", resumed).Msg("agent connected")
	}
	return c, nil
}

// Accept owns one greeted agent link until it ends: it serves the link until
// it fails, the agent leaves, or ctx ends, then takes the agent offline.
// Anything the agent sends that breaks the protocol closes this link (with
// the reason in the websocket close frame) and nothing else.
func (s *Server) Accept(ctx context.Context, c *agentConn) error {
	err := c.sess.Run(ctx)
	s.metrics.LinkDropped(dropReason(ctx, err))
	s.unregister(c)
	c.out.close()
	logLinkEnd(c.log(s), "agent disconnected", err)
	return err
}

// unregister takes c out of the hub and, if it was still the agent's current
// link, marks the agent offline.
func (s *Server) unregister(c *agentConn) {
	if s.hub.Unregister(c) {
		s.seen.offline(c.id, time.Now())
		s.sessions.AgentOffline(c.id)
	}
}

// handshake reads and checks the agent's hello.
func (s *Server) handshake(sess *mux.Session) (wire.Hello, error) {
	var h wire.Hello
	env, err := sess.ReadFirst(handshakeTimeout)
	if err == nil && env.Type != wire.MsgHello {
		err = &mux.CloseError{Code: websocket.CloseProtocolError, Reason: fmt.Sprintf("first message must be %q, got %q", wire.MsgHello, env.Type)}
	}
	if err == nil {
		if derr := wire.DecodeBody(env, &h); derr != nil {
			err = &mux.CloseError{Code: websocket.CloseProtocolError, Reason: derr.Error()}
		}
	}
	if err != nil {
		var ce *mux.CloseError
		if errors.As(err, &ce) {
			sess.Close(ce.Code, ce.Reason)
		} else {
			sess.Close(websocket.CloseProtocolError, "handshake failed")
		}
		return h, err
	}
	return h, nil
}

// control handles a control message from a registered agent, on its link's
// Run goroutine.
func (s *Server) control(c *agentConn, env wire.Envelope) error {
	switch env.Type {
	case wire.MsgInventory:
		var inv wire.Inventory
		if err := wire.DecodeBody(env, &inv); err != nil {
			return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		s.seen.inventory(c.id, inv, time.Now())
		return nil
	case wire.MsgSoftware:
		return s.softwareReport(c, env)
	case wire.MsgRunStarted:
		var m wire.RunStarted
		if err := wire.DecodeBody(env, &m); err != nil {
			return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		s.jobs.Started(c.id, m)
		return nil
	case wire.MsgRunResult:
		var m wire.RunResult
		if err := wire.DecodeBody(env, &m); err != nil {
			return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		s.jobs.Result(c.id, m)
		return nil
	case wire.MsgRunNotStarted:
		var m wire.RunNotStarted
		if err := wire.DecodeBody(env, &m); err != nil {
			return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		s.jobs.NotStarted(c.id, m)
		return nil
	case wire.MsgPoliciesRequest:
		var m wire.PoliciesRequest
		if err := wire.DecodeBody(env, &m); err != nil {
			return protocolError(err)
		}
		s.checks.greet(c.id)
		return nil
	case wire.MsgCheckResults:
		var m wire.CheckResults
		if err := wire.DecodeBody(env, &m); err != nil {
			return protocolError(err)
		}
		s.checks.results(c.id, m)
		return nil
	case wire.MsgSelfHeal:
		var m wire.SelfHeal
		if err := wire.DecodeBody(env, &m); err != nil {
			return protocolError(err)
		}
		s.checks.selfHeal(c.id, m)
		return nil
	case wire.MsgSessionAnswer:
		var m wire.SessionAnswer
		if err := wire.DecodeBody(env, &m); err != nil {
			return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		s.sessions.Answer(c.id, m)
		return nil
	case wire.MsgSessionEnd:
		var m wire.SessionEnd
		if err := wire.DecodeBody(env, &m); err != nil {
			return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		s.sessions.AgentEnded(c.id, m)
		return nil
	case wire.MsgSessionPending:
		var m wire.SessionPending
		if err := wire.DecodeBody(env, &m); err != nil {
			return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		s.sessions.Pending(c.id, m)
		return nil
	}
	return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: fmt.Sprintf("unexpected message type %q", env.Type)}
}

// logLinkEnd writes the one log line for a link that ended: a warning when
// the agent broke the protocol, debug otherwise (agents come and go).
func logLinkEnd(log zerolog.Logger, msg string, err error) {
	var ce *mux.CloseError
	var wce *websocket.CloseError
	switch {
	case errors.As(err, &ce) && ce.Code == websocket.CloseProtocolError,
		errors.As(err, &ce) && ce.Code == websocket.CloseMessageTooBig,
		errors.As(err, &ce) && ce.Code == websocket.CloseUnsupportedData:
		log.Warn().Str("reason", ce.Reason).Msg(msg + ": protocol violation")
	case errors.As(err, &wce):
		log.Debug().Int("code", wce.Code).Str("reason", wce.Text).Msg(msg)
	default:
		log.Debug().Err(err).Msg(msg)
	}
}

// dropReason classifies why a link ended, for the metrics (metrics.Drop*).
func dropReason(ctx context.Context, err error) string {
	var ce *mux.CloseError
	var wce *websocket.CloseError
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		return metrics.DropRelayStopping
	case errors.As(err, &ce) && (ce.Code == websocket.CloseProtocolError || ce.Code == websocket.CloseMessageTooBig ||
		ce.Code == websocket.CloseUnsupportedData):
		return metrics.DropProtocol
	case errors.As(err, &wce):
		return metrics.DropAgentClosed
	case errors.As(err, &ne) && ne.Timeout():
		return metrics.DropTimeout
	}
	return metrics.DropError
}

// inventoryFromWire converts what an agent reported into a store update.
func inventoryFromWire(id string, inv wire.Inventory, t time.Time) store.Inventory {
	return store.Inventory{
		AgentID: id, Hostname: inv.Hostname, OS: inv.OS, Arch: inv.Arch, OSVersion: inv.OSVersion,
		Version: inv.Version, Users: inv.Users, IPs: inv.IPs, Tags: inv.Tags, Seen: t,
	}
}

// Compile-time check that agentConn is a hub.Link.
var _ hub.Link = (*agentConn)(nil)
