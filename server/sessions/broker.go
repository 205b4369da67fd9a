// Package sessions brokers interactive sessions on the relay: it asks an
// agent for a session on a technician's behalf, records the agent's consent
// decision, then copies bytes between the technician's websocket and a
// stream on the agent's link. The bytes are SSH, end to end between the
// technician's client and the agent: the relay cannot read them. The agent
// records PTY sessions itself and streams the recording here, where it is
// kept as an asciicast v2 file under the data directory.
//
// Ownership: Serve runs on the technician's HTTP handler goroutine and owns
// that session's two copy goroutines, returning after both ended. Answer,
// AgentEnded and AgentOffline are called from agent link goroutines and never
// block. HandleStream runs on a goroutine the agent's link started for the
// recording stream. EndAccess (access.go: the sessions of revoked API
// tokens) never blocks either; the timer it may arm is stopped by the
// session's Serve. Close ends every live session and waits for Serve calls
// to return.
//
// Consent is evidence: the agent signs each decision and each end of a
// session with its key (internal/receipt). Serve checks the signature (the
// agent's certificate chains to the relay CA, names this agent, and is the
// one on record for it) before it records the decision; an answer that is
// not validly signed is refused, logged, and the session does not start.
// The signed receipt goes into the audit record's detail, where `patchbay
// audit verify` checks it again.
package sessions

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/receipt"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// Links is what the broker needs from the hub.
type Links interface {
	Send(agentID, typ string, body any) error
	Open(ctx context.Context, agentID, kind string) (*mux.Stream, error)
}

// Defaults for Config fields left zero.
const (
	// DefaultConsentWait bounds how long the relay waits for an agent's
	// answer. Agents time their own prompts out (60 s by default) and answer
	// "denied"; this only catches an agent that never answers.
	DefaultConsentWait = 5 * time.Minute
	// DefaultMaxRecording caps one session's stored recording.
	DefaultMaxRecording = 256 << 20
	pingEvery           = 30 * time.Second
	writeWait           = 10 * time.Second
	chunk               = 64 << 10
	endGrace            = time.Second     // how long a closed stream waits for the agent's session_end
	drainWait           = 2 * time.Second // how long an ended session's last bytes may take to pass
)

// Metrics is what the broker counts (server/metrics implements it).
type Metrics interface {
	// SessionOpened counts a session of kind being bridged; ended is called
	// once when it ends.
	SessionOpened(kind string) (ended func())
	ConsentDecision(kind, decision string)
}

type noMetrics struct{}

func (noMetrics) SessionOpened(string) func()    { return func() {} }
func (noMetrics) ConsentDecision(string, string) {}

// sessionKind names a session for the metrics by the most telling
// capability granted: desktop, shell, sftp, forward or exec.
func sessionKind(granted []string) string {
	for _, k := range []struct{ cap, kind string }{
		{wire.CapDesktop, "desktop"}, {wire.CapDesktopView, "desktop"}, {wire.CapShell, "shell"},
		{wire.CapSFTP, "sftp"}, {wire.CapForward, "forward"}, {wire.CapExec, "exec"},
	} {
		if slices.Contains(granted, k.cap) {
			return k.kind
		}
	}
	return "other"
}

// Config configures a Broker.
type Config struct {
	Store         *store.Store
	Links         Links
	CA            *x509.Certificate // the relay CA: agents' certificates chain to it
	Log           zerolog.Logger
	RecordingsDir string        // created 0700 on first use
	ConsentWait   time.Duration // default DefaultConsentWait
	MaxRecording  int64         // default DefaultMaxRecording
	Now           func() time.Time
	// Node is the relay's stable ID in a tier, recorded with each session so
	// that a relay starting ends only its own sessions left open ("": alone).
	Node string
	// Metrics counts sessions and consent decisions (nil: not counted).
	Metrics Metrics
}

// Broker is safe for concurrent use.
type Broker struct {
	cfg   Config
	roots *x509.CertPool // cfg.CA

	mu      sync.Mutex
	pending map[string]*pending // session ID -> request waiting for the agent's answer
	live    map[string]*live    // session ID -> approved session being bridged
	access  map[string]*access  // session ID -> the API token behind it, for every Serve in progress (access.go)
	closed  bool
	serving sync.WaitGroup // Serve calls in progress
}

// pending is a request waiting for its agent's answer.
type pending struct {
	agentID string
	answer  chan wire.SessionAnswer  // buffered 1; written once by Answer
	gone    chan string              // buffered 1; the agent went offline (reason)
	asked   chan wire.SessionPending // buffered 1; a person is being asked (Pending)

	// Guarded by Broker.mu: who is being asked, until when (zero: not yet).
	deadline time.Time
	asking   string
}

// live is an approved session. end is called once to end it.
type live struct {
	agentID string
	end     context.CancelCauseFunc
	cut     *time.Timer // guarded by Broker.mu: ends it after its access was revoked (access.go)
}

// New returns a broker.
func New(cfg Config) *Broker {
	if cfg.ConsentWait <= 0 {
		cfg.ConsentWait = DefaultConsentWait
	}
	if cfg.MaxRecording <= 0 {
		cfg.MaxRecording = DefaultMaxRecording
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	roots := x509.NewCertPool()
	if cfg.CA != nil {
		roots.AddCert(cfg.CA)
	}
	return &Broker{cfg: cfg, roots: roots, pending: map[string]*pending{}, live: map[string]*live{}, access: map[string]*access{}}
}

// Request is a technician's request for a session.
type Request struct {
	AgentID, Hostname string
	Technician        string // the API token's name; the SSH certificate's key ID
	TokenID           string // the API token that asked: revoking it ends the session (EndAccess)
	Actor             string // how the technician appears in the audit log
	Reason            string
	Capabilities      []string
}

// ErrClosed is returned by Serve once the relay is shutting down.
var ErrClosed = errors.New("relay shutting down")

func (b *Broker) now() time.Time { return b.cfg.Now().UTC() }

// Serve runs one session for a technician connected on ws: it records the
// request, asks the agent, tells the technician what the agent decided and,
// when approved, copies bytes until either side ends. It owns ws and closes
// it. The returned error says why the session did not run or how it ended.
func (b *Broker) Serve(ctx context.Context, ws *websocket.Conn, req Request) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		closeWS(ws, websocket.CloseGoingAway, "relay shutting down")
		ws.Close()
		return ErrClosed
	}
	b.serving.Add(1)
	b.mu.Unlock()
	defer b.serving.Done()

	id := store.NewID()
	log := b.cfg.Log.With().Str("session_id", id).Str("agent_id", req.AgentID).Str("technician", req.Technician).Logger()
	t := newTechConn(ws)
	defer t.close()
	acc, err := b.track(ctx, id, req.TokenID)
	defer b.untrack(id)
	if err != nil {
		log.Info().Err(err).Msg("session refused")
		t.fail(apiv1.SessionStatus{State: "failed", AgentID: req.AgentID, Message: err.Error()})
		return err
	}

	now := b.now()
	err = b.cfg.Store.CreateSession(ctx, store.Session{
		ID: id, AgentID: req.AgentID, Hostname: req.Hostname, Technician: req.Technician, TokenID: req.TokenID, Actor: req.Actor,
		Reason: req.Reason, Capabilities: req.Capabilities, RequestedAt: now, Node: b.cfg.Node,
	}, &audit.Record{Time: now, Actor: req.Actor, Action: "session.request", Target: id, Detail: map[string]string{
		"agent_id": req.AgentID, "hostname": req.Hostname, "reason": req.Reason, "capabilities": fmt.Sprint(req.Capabilities),
	}})
	if err != nil {
		log.Error().Err(err).Msg("record session request")
		t.fail(apiv1.SessionStatus{State: "failed", SessionID: id, AgentID: req.AgentID, Message: "the relay could not record the request; see its log"})
		return err
	}

	ans, err := b.ask(ctx, t, id, req, acc)
	if err != nil {
		log.Info().Err(err).Msg("session request failed")
		t.fail(apiv1.SessionStatus{State: "failed", SessionID: id, AgentID: req.AgentID, Message: err.Error()})
		by := "relay"
		if b.revokedReason(id) != "" {
			by = byRevoked
		}
		b.finish(id, req, by, err.Error(), nil, log)
		return err
	}
	wctx := context.WithoutCancel(ctx)
	if err := b.checkAnswer(wctx, id, req, ans); err != nil {
		// Nothing shows that the endpoint decided this: the relay does not
		// act on it, whatever it says.
		log.Warn().Err(err).Bool("approved", ans.Approved).Msg("consent answer refused: not validly signed by the agent")
		t.fail(apiv1.SessionStatus{State: "failed", SessionID: id, AgentID: req.AgentID,
			Message: "the endpoint's answer was not validly signed; see the relay's log"})
		_ = b.cfg.Links.Send(req.AgentID, wire.MsgSessionEnd, wire.SessionEnd{SessionID: id, By: "relay", Reason: "consent answer not validly signed"})
		b.finish(id, req, "relay", "the endpoint's answer was not validly signed: "+err.Error(), nil, log)
		return err
	}
	consent := &apiv1.Consent{Mode: ans.Mode, Backend: ans.Backend, By: ans.By, Decision: "denied"}
	action := "session.denied"
	if ans.Approved {
		consent.Decision, action = "approved", "session.approved"
	}
	switch {
	case ans.Approved:
		b.cfg.Metrics.ConsentDecision("session", "approved")
	case ans.By == "timeout": // the agent's consent.ByTimeout: nobody answered in time
		b.cfg.Metrics.ConsentDecision("session", "timeout")
	default:
		b.cfg.Metrics.ConsentDecision("session", "denied")
	}
	at := b.now()
	detail := map[string]string{
		"technician": req.Technician, "mode": ans.Mode, "backend": ans.Backend, "by": ans.By, "message": ans.Message,
		"capabilities": fmt.Sprint(ans.Capabilities),
	}
	receipt.AddToDetail(detail, *ans.Receipt)
	err = b.cfg.Store.DecideSession(wctx, id, store.Decision{
		Approved: ans.Approved, Granted: ans.Capabilities, Mode: ans.Mode, Backend: ans.Backend, By: ans.By, Message: ans.Message, At: at,
	}, &audit.Record{Time: at, Actor: "agent " + req.AgentID + " (" + ans.By + ")", Action: action, Target: id, Detail: detail})
	if err != nil {
		// Without a stored decision the session must not run: nothing would
		// show that the user approved it.
		log.Error().Err(err).Msg("record consent")
		t.fail(apiv1.SessionStatus{State: "failed", SessionID: id, AgentID: req.AgentID, Message: "the relay could not record the endpoint's answer; see its log"})
		_ = b.cfg.Links.Send(req.AgentID, wire.MsgSessionEnd, wire.SessionEnd{SessionID: id, By: "relay", Reason: "relay error"})
		b.finish(id, req, "relay", "could not record the consent decision", nil, log)
		return err
	}
	st := apiv1.SessionStatus{SessionID: id, AgentID: req.AgentID, Hostname: req.Hostname, Consent: consent, Message: ans.Message}
	if !ans.Approved {
		log.Info().Str("by", ans.By).Str("message", ans.Message).Msg("session refused by the endpoint")
		st.State = "denied"
		if st.Message == "" {
			st.Message = "refused by the endpoint's consent policy"
		}
		t.fail(st)
		return fmt.Errorf("session refused: %s", st.Message)
	}
	log.Info().Str("by", ans.By).Strs("capabilities", ans.Capabilities).Msg("session approved")
	st.State, st.Capabilities = "approved", ans.Capabilities
	by, reason, signed := b.bridge(ctx, t, id, req, st)
	b.finish(id, req, by, reason, signed, log)
	return nil
}

// checkReceipt verifies a receipt an agent sent on its link: signed by the
// key of a certificate from the relay CA that names this agent and is the
// certificate on record for it (the first one seen is recorded for agents
// enrolled before certificates were kept).
func (b *Broker) checkReceipt(ctx context.Context, agentID string, s *receipt.Signed) (receipt.Receipt, error) {
	if s == nil {
		return receipt.Receipt{}, errors.New("no signed consent receipt (is the agent older than the relay?)")
	}
	rc, err := s.CheckFrom(ctx, b.roots, b.cfg.Store, agentID)
	if err != nil {
		return receipt.Receipt{}, err
	}
	if rc.Kind != receipt.KindSession {
		return receipt.Receipt{}, fmt.Errorf("receipt: of kind %q, not a session's", rc.Kind)
	}
	return rc, nil
}

// checkAnswer verifies that ans carries a valid receipt for this very
// decision: this session, this technician, the same decision and, for an
// approval, the same capabilities.
func (b *Broker) checkAnswer(ctx context.Context, id string, req Request, ans wire.SessionAnswer) error {
	rc, err := b.checkReceipt(ctx, req.AgentID, ans.Receipt)
	if err != nil {
		return err
	}
	want := receipt.Denied
	if ans.Approved {
		want = receipt.Approved
	}
	switch {
	case rc.ID != id:
		return fmt.Errorf("receipt: for session %s, not %s", rc.ID, id)
	case rc.Technician != req.Technician:
		return fmt.Errorf("receipt: for technician %q, not %q", rc.Technician, req.Technician)
	case rc.Decision != want:
		return fmt.Errorf("receipt: says %s, the answer says %s", rc.Decision, want)
	case ans.Approved && !slices.Equal(rc.Capabilities, ans.Capabilities):
		return fmt.Errorf("receipt: approves %v, the answer %v", rc.Capabilities, ans.Capabilities)
	}
	return nil
}

// ask sends the request to the agent and waits for its answer.
func (b *Broker) ask(ctx context.Context, t *techConn, id string, req Request, acc *access) (wire.SessionAnswer, error) {
	p := &pending{agentID: req.AgentID, answer: make(chan wire.SessionAnswer, 1), gone: make(chan string, 1), asked: make(chan wire.SessionPending, 1)}
	b.mu.Lock()
	b.pending[id] = p
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
	}()
	err := b.cfg.Links.Send(req.AgentID, wire.MsgSessionRequest, wire.SessionRequest{
		SessionID: id, Technician: req.Technician, Reason: req.Reason, Capabilities: req.Capabilities, RequestedAt: b.now(),
	})
	if err != nil {
		return wire.SessionAnswer{}, fmt.Errorf("agent %s is offline", req.AgentID)
	}
	t.status(apiv1.SessionStatus{State: "waiting", SessionID: id, AgentID: req.AgentID, Hostname: req.Hostname,
		Message: "waiting for the endpoint to approve (its own consent policy decides)"})
	timer := time.NewTimer(b.cfg.ConsentWait)
	defer timer.Stop()
	withdraw := func(by, reason string) {
		_ = b.cfg.Links.Send(req.AgentID, wire.MsgSessionEnd, wire.SessionEnd{SessionID: id, By: by, Reason: reason})
	}
	for {
		select {
		case m := <-p.asked:
			t.status(waitingStatus(id, req, m.Deadline, m.Asking, b.now()))
			continue
		case ans := <-p.answer:
			return ans, nil
		case reason := <-p.gone:
			return wire.SessionAnswer{}, errors.New(reason)
		case reason := <-acc.revoked:
			withdraw(byRevoked, reason)
			return wire.SessionAnswer{}, errors.New(reason)
		case <-t.readerDone:
			if why := t.refusal(); why != "" {
				withdraw("relay", why)
				return wire.SessionAnswer{}, errors.New(why)
			}
			withdraw("technician", "the technician left")
			return wire.SessionAnswer{}, errors.New("the technician left before the endpoint answered")
		case <-timer.C:
			b.cfg.Metrics.ConsentDecision("session", "timeout")
			withdraw("relay", "no answer")
			return wire.SessionAnswer{}, fmt.Errorf("the endpoint did not answer within %v", b.cfg.ConsentWait)
		case <-ctx.Done():
			withdraw("relay", "relay shutting down")
			return wire.SessionAnswer{}, errors.New("relay shutting down")
		}
	}
}

// waitingStatus tells the technician that a person at the machine is being
// asked, until when (the agent's deadline, and the seconds left by the
// relay's clock).
func waitingStatus(id string, req Request, deadline time.Time, asking string, now time.Time) apiv1.SessionStatus {
	if asking == "" {
		asking = "the user at " + req.Hostname
	}
	left := max(0, int(deadline.Sub(now).Round(time.Second)/time.Second))
	d := deadline.UTC()
	return apiv1.SessionStatus{State: "waiting", SessionID: id, AgentID: req.AgentID, Hostname: req.Hostname,
		Message: fmt.Sprintf("waiting for %s (%d s left)", asking, left),
		Asking:  asking, Deadline: &d, SecondsLeft: &left,
		Consent: &apiv1.Consent{Decision: "pending"}}
}

// Waiting reports whether session id is waiting for a person at the
// machine, and who is asked until when.
func (b *Broker) Waiting(id string) (deadline time.Time, asking string, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pending[id]
	if p == nil || p.deadline.IsZero() {
		return time.Time{}, "", false
	}
	return p.deadline, p.asking, true
}

// Pending hands an agent's "a person is being asked" to the request waiting
// for it; for a session that is not waiting (or another agent's) it is
// ignored.
func (b *Broker) Pending(agentID string, m wire.SessionPending) {
	b.mu.Lock()
	p := b.pending[m.SessionID]
	if p != nil && p.agentID == agentID {
		p.deadline, p.asking = m.Deadline, m.Asking
	}
	b.mu.Unlock()
	if p == nil || p.agentID != agentID {
		return
	}
	select { // the newest wins
	case <-p.asked:
	default:
	}
	select {
	case p.asked <- m:
	default:
	}
}

// bridge copies bytes between the technician and a new stream to the agent
// until one side ends, and returns who ended the session and why, with
// the agent's signed receipt of the end when it sent one.
func (b *Broker) bridge(ctx context.Context, t *techConn, id string, req Request, st apiv1.SessionStatus) (by, reason string, signed *receipt.Signed) {
	sctx, end := context.WithCancelCause(ctx)
	defer end(nil)
	stream, err := b.cfg.Links.Open(sctx, req.AgentID, wire.SSHStreamKind(id))
	if err != nil {
		t.fail(apiv1.SessionStatus{State: "failed", SessionID: id, AgentID: req.AgentID, Message: "open a stream to the agent: " + err.Error()})
		return "relay", "could not open a stream to the agent: " + err.Error(), nil
	}
	defer stream.Close()
	b.mu.Lock()
	l := &live{agentID: req.AgentID, end: end}
	b.live[id] = l
	if acc := b.access[id]; acc != nil && acc.reason != "" {
		cutLater(l, acc.reason) // revoked while the agent was deciding
	}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.live, id)
		if l.cut != nil {
			l.cut.Stop()
		}
		b.mu.Unlock()
	}()
	defer b.cfg.Metrics.SessionOpened(sessionKind(st.Capabilities))()
	t.status(st)
	t.streamc <- stream

	writerDone := make(chan struct{})
	go func() { // agent -> technician: each buffer the stream received, as one message
		defer close(writerDone)
		_, _ = stream.WriteTo(writerFunc(t.write))
	}()
	by, reason = "technician", "the technician disconnected"
	select {
	case <-t.readerDone:
		stream.Close() // the agent's SSH server sees the end and says how it went
	case <-writerDone:
		by, reason = "agent", "the SSH session ended"
	case <-sctx.Done():
	}
	if sctx.Err() == nil {
		// The agent sends session_end (who ended it and why: the user, a
		// limit, a refused certificate) right after its side of the stream
		// ends: give it a moment to arrive.
		select {
		case <-sctx.Done():
		case <-time.After(endGrace):
		}
	}
	var ee *endError
	if c := context.Cause(sctx); errors.As(c, &ee) {
		by, reason, signed = ee.by, ee.reason, ee.receipt
	} else if c != nil && !errors.Is(c, context.Canceled) {
		by, reason = "relay", c.Error()
	} else if ctx.Err() != nil {
		by, reason = "relay", "relay shutting down"
	}
	if why := t.refusal(); why != "" {
		// The relay closed the technician's websocket for what it sent:
		// that is why it ended, whatever the agent saw (its receipt stays).
		by, reason = "relay", why
	}
	if why := b.revokedReason(id); why != "" {
		// The technician's access was revoked: that is why, whether the
		// agent ended it first (the certificate is revoked there too) or
		// the relay cut it.
		by, reason = byRevoked, why
	}
	// What the agent sent before it ended (its last output, the message
	// telling the technician why) is still on its way: let the writer pass
	// it on, for a bounded time, before cutting the stream.
	select {
	case <-writerDone:
	case <-t.readerDone:
	case <-time.After(drainWait):
	}
	stream.Close()
	t.closeWith(websocket.CloseNormalClosure, "session ended: "+reason)
	<-writerDone
	return by, reason, signed
}

// finish ends a session in the store and the audit log, once. signed is
// the agent's receipt of the end, if it sent one: kept in the audit record
// when it verifies, logged and left out when not.
func (b *Broker) finish(id string, req Request, by, reason string, signed *receipt.Signed, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := b.now()
	detail := map[string]string{"technician": req.Technician, "by": by, "reason": reason}
	if signed != nil {
		rc, err := b.checkReceipt(ctx, req.AgentID, signed)
		switch {
		case err != nil:
			log.Warn().Err(err).Msg("session end receipt refused: not validly signed by the agent")
		case rc.ID != id || rc.Decision != receipt.Ended:
			log.Warn().Str("receipt_session", rc.ID).Str("decision", rc.Decision).Msg("session end receipt refused: not this session's end")
		default:
			receipt.AddToDetail(detail, *signed)
		}
	}
	changed, err := b.cfg.Store.EndSession(ctx, id, by, reason, now, &audit.Record{
		Time: now, Actor: "agent " + req.AgentID, Action: "session.end", Target: id, Detail: detail,
	})
	if err != nil {
		log.Error().Err(err).Msg("record session end")
		return
	}
	if changed {
		log.Info().Str("by", by).Str("reason", reason).Msg("session ended")
	}
}

// Answer hands an agent's answer to the request waiting for it. An answer
// for a session that is not waiting (late, or for another agent) is ignored.
func (b *Broker) Answer(agentID string, m wire.SessionAnswer) {
	b.mu.Lock()
	p := b.pending[m.SessionID]
	b.mu.Unlock()
	if p == nil || p.agentID != agentID {
		b.cfg.Log.Debug().Str("agent_id", agentID).Str("session_id", m.SessionID).Msg("session answer for no pending request; ignored")
		return
	}
	select {
	case p.answer <- m:
	default:
	}
}

// AgentEnded ends a live session the agent reports as over.
func (b *Broker) AgentEnded(agentID string, m wire.SessionEnd) {
	b.mu.Lock()
	l := b.live[m.SessionID]
	b.mu.Unlock()
	if l == nil || l.agentID != agentID {
		return
	}
	reason := m.Reason
	if reason == "" {
		reason = "ended on the endpoint"
	}
	l.end(&endError{by: m.By, reason: reason, receipt: m.Receipt})
}

// AgentOffline fails the requests and ends the sessions of an agent whose
// link ended.
func (b *Broker) AgentOffline(agentID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.pending {
		if p.agentID == agentID {
			select {
			case p.gone <- "the agent went offline before answering":
			default:
			}
		}
	}
	for _, l := range b.live {
		if l.agentID == agentID {
			l.end(&endError{by: "relay", reason: "the agent's link to the relay ended"})
		}
	}
}

// End ends a live session on behalf of a person (technician or admin).
func (b *Broker) End(id, by, reason string) bool {
	b.mu.Lock()
	l := b.live[id]
	b.mu.Unlock()
	if l == nil {
		return false
	}
	_ = b.cfg.Links.Send(l.agentID, wire.MsgSessionEnd, wire.SessionEnd{SessionID: id, By: by, Reason: reason})
	// Give the agent a moment to tell the technician why, then cut the bytes.
	time.AfterFunc(2*time.Second, func() { l.end(&endError{by: by, reason: reason}) })
	return true
}

// Close ends every live session and waits for the Serve calls to return.
func (b *Broker) Close() {
	b.mu.Lock()
	b.closed = true
	for _, l := range b.live {
		l.end(&endError{by: "relay", reason: "relay shutting down"})
	}
	for _, p := range b.pending {
		select {
		case p.gone <- "relay shutting down":
		default:
		}
	}
	b.mu.Unlock()
	b.serving.Wait()
}

// writerFunc is a function as an io.Writer that writes all of p or fails.
type writerFunc func(p []byte) error

func (f writerFunc) Write(p []byte) (int, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// endError is why a live session ended, with the agent's signed receipt
// when the agent ended it.
type endError struct {
	by, reason string
	receipt    *receipt.Signed
}

func (e *endError) Error() string { return e.reason }

// RecordingPath is where session id's recording is stored.
func (b *Broker) RecordingPath(id string) string {
	return filepath.Join(b.cfg.RecordingsDir, id+".cast")
}

// HandleStream takes a stream the agent opened: the recording of one of its
// live (or just approved) sessions. Anything else is reset.
func (b *Broker) HandleStream(agentID string, st *mux.Stream) {
	defer st.Close()
	what, id, ok := wire.ParseSessionStreamKind(st.Kind())
	if !ok || what != "rec" {
		b.cfg.Log.Warn().Str("agent_id", agentID).Str("kind", st.Kind()).Msg("agent opened a stream of unknown kind; refused")
		return
	}
	ctx := context.Background()
	sess, err := b.cfg.Store.GetSession(ctx, id)
	if err != nil || sess.AgentID != agentID || (sess.State != store.SessionApproved && sess.State != store.SessionEnded) {
		b.cfg.Log.Warn().Str("agent_id", agentID).Str("session_id", id).Msg("recording for a session this agent does not have; refused")
		return
	}
	if err := os.MkdirAll(b.cfg.RecordingsDir, 0o700); err != nil {
		b.cfg.Log.Error().Err(err).Msg("create recordings directory")
		return
	}
	f, err := os.OpenFile(b.RecordingPath(id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		b.cfg.Log.Warn().Err(err).Str("session_id", id).Msg("second recording stream for a session; refused")
		return
	}
	var dst io.Writer = f
	var db *dbRecorder
	if b.cfg.Store.Shared() { // a tier: any relay serves it (recordings.go)
		db = &dbRecorder{b: b, id: id}
		dst = io.MultiWriter(f, db)
	}
	n, err := io.Copy(dst, io.LimitReader(st, b.cfg.MaxRecording))
	if db != nil {
		db.flush()
	}
	if err == nil && n == b.cfg.MaxRecording {
		b.cfg.Log.Warn().Str("session_id", id).Int64("limit", b.cfg.MaxRecording).Msg("recording reached its size limit; the rest is not stored")
		_, _ = io.Copy(io.Discard, st)
	}
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, io.EOF) {
		b.cfg.Log.Debug().Err(err).Str("session_id", id).Msg("recording stream ended")
	}
	if err := b.cfg.Store.SetRecordingSize(ctx, id, n); err != nil {
		b.cfg.Log.Error().Err(err).Msg("store recording size")
	}
}

func closeWS(ws *websocket.Conn, code int, reason string) {
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
}
