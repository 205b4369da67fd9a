package consent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// The helper backend. The agent runs as a service (root, no display); a
// small helper (`patchbay-agent helper`) started in each graphical login
// connects to the service's helper socket, says which user and session it
// is, shows the prompts in that session and a live-session indicator with
// an End session button. The service believes a helper only when the kernel
// says the process at the other end of the socket (peer credentials) is the
// user it names and that user owns the session it claims (sessionSource).
//
// Who is asked is the policy's Ask: "console" (default) asks the helper of
// the console's session only; "all" asks every helper, first answer wins.
// When nobody is there to ask, the policy's WhenNoUser decides. Every
// helper, whoever it belongs to, sees the live sessions and can end them:
// anyone at the machine may stop a remote session.

// helperHelloWait bounds the wait for a new helper's hello.
const helperHelloWait = 10 * time.Second

// helperWriteWait bounds one write to a helper; a helper slower than that
// is dropped (it reconnects).
const helperWriteWait = 5 * time.Second

// helperQueue is how many messages wait for one helper before it is dropped.
const helperQueue = 32

// helperServer listens on the helper socket and keeps the verified helpers.
// It owns the accept goroutine and two goroutines per helper; close stops
// them and waits.
type helperServer struct {
	c        *Consent
	ln       *net.UnixListener
	path     string
	sessions sessionSource
	log      zerolog.Logger

	mu      sync.Mutex
	raw     map[*net.UnixConn]struct{} // every accepted connection, verified or not
	conns   map[*helperConn]struct{}   // verified helpers
	asked   map[string][]*helperConn   // request ID -> helpers shown its prompt
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
}

// helperConn is one verified helper. out is its bounded send queue, drained
// by its writer goroutine; gone is closed when the helper is dropped.
type helperConn struct {
	conn          io.ReadWriteCloser // a unix socket, or the pipes of a helper the service launched
	user, uid     string
	session       string
	out           chan []byte
	gone          chan struct{}
	closeGoneOnce sync.Once
}

func (h *helperConn) drop() {
	h.closeGoneOnce.Do(func() { close(h.gone); h.conn.Close() })
}

// send queues b; a helper whose queue is full is dropped.
func (h *helperConn) send(b []byte) {
	select {
	case h.out <- b:
	case <-h.gone:
	default:
		h.drop()
	}
}

// listenHelpers listens on path. The socket is 0666 (any local user may
// connect; the service tells who they are from the kernel) in a directory
// that only the agent's account may change.
//
// On Windows there is no socket: the service launches the helper itself in
// the users' sessions (startLauncher) and talks to it over pipes, so it
// knows who the helper is from the token it launched it with.
func listenHelpers(c *Consent, path string, sessions sessionSource) (*helperServer, error) {
	switch runtime.GOOS {
	case "windows":
		h := newHelperServer(c, sessions)
		if err := h.startLauncher(); err != nil {
			return nil, err
		}
		return h, nil
	case "linux", "darwin":
	default:
		return nil, fmt.Errorf("helper backend: not available on %s yet; use --consent-backend desktop or web", runtime.GOOS)
	}
	if len(path) > 100 {
		return nil, fmt.Errorf("helper socket %s: path too long for a unix socket (limit ~100 bytes)", path)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("helper socket: %w", err)
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("helper socket: %w", err)
	} else if st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("helper socket: %s is writable by group or others, who could replace the socket; use a directory only the agent's account can write (default /run/patchbay-agent)", dir)
	}
	_ = os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("helper socket: %w", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("helper socket: %w", err)
	}
	h := newHelperServer(c, sessions)
	h.ln, h.path = ln, path
	h.wg.Add(1)
	go h.accept()
	return h, nil
}

func newHelperServer(c *Consent, sessions sessionSource) *helperServer {
	return &helperServer{c: c, sessions: sessions, log: c.log,
		raw: map[*net.UnixConn]struct{}{}, conns: map[*helperConn]struct{}{}, asked: map[string][]*helperConn{}, closing: make(chan struct{})}
}

func (h *helperServer) accept() {
	defer h.wg.Done()
	for {
		conn, err := h.ln.AcceptUnix()
		if err != nil {
			return
		}
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			conn.Close()
			return
		}
		h.raw[conn] = struct{}{}
		h.wg.Add(1)
		h.mu.Unlock()
		go func() {
			defer h.wg.Done()
			h.serve(conn)
			h.mu.Lock()
			delete(h.raw, conn)
			h.mu.Unlock()
		}()
	}
}

// serve checks a new helper's claim, then reads its answers until it goes.
func (h *helperServer) serve(conn *net.UnixConn) {
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 4096)
	hc, err := h.greet(conn, r)
	if err != nil {
		h.log.Warn().Err(err).Msg("consent helper refused")
		conn.SetWriteDeadline(time.Now().Add(helperWriteWait))
		_, _ = conn.Write(encodeHelperMsg(helperMsg{Type: helperRefused, Error: err.Error()}))
		return
	}
	h.run(hc, r)
}

// attach serves a helper the service launched itself (Windows): who it is
// comes from the launcher (the session's token), not from what it says. Its
// hello is read and its claims only logged.
func (h *helperServer) attach(rw io.ReadWriteCloser, user, uid, session string) {
	defer rw.Close()
	r := bufio.NewReaderSize(rw, 4096)
	m, err := readHelperMsg(r)
	if err != nil || m.Type != helperHello {
		h.log.Warn().Err(err).Str("user", user).Str("session", session).Msg("launched consent helper did not say hello; stopped")
		return
	}
	if m.User != user || m.Session != session {
		h.log.Debug().Str("claimed_user", cleanText(m.User, 64)).Str("claimed_session", cleanText(m.Session, 128)).
			Str("user", user).Str("session", session).Msg("launched consent helper: its own idea of who it is differs; the launcher's counts")
	}
	h.run(&helperConn{conn: rw, user: user, uid: uid, session: session, out: make(chan []byte, helperQueue), gone: make(chan struct{})}, r)
}

// run serves a verified helper until it goes: a writer goroutine (owned
// here, waited for) drains its queue; this goroutine reads its messages.
func (h *helperServer) run(hc *helperConn, r *bufio.Reader) {
	conn := hc.conn
	setWriteDeadline := func(t time.Time) {
		if d, ok := conn.(interface{ SetWriteDeadline(time.Time) error }); ok {
			_ = d.SetWriteDeadline(t)
		}
	}
	log := h.log.With().Str("user", hc.user).Str("session", hc.session).Logger()
	writerDone := make(chan struct{})
	go func() { // the writer: owned by serve, which waits for it
		defer close(writerDone)
		for {
			select {
			case b := <-hc.out:
				setWriteDeadline(time.Now().Add(helperWriteWait))
				if _, err := conn.Write(b); err != nil {
					hc.drop()
					return
				}
			case <-hc.gone:
				return
			}
		}
	}()
	console := hc.session == h.sessions.console()
	hc.send(encodeHelperMsg(helperMsg{Type: helperWelcome, User: hc.user, Session: hc.session, Console: console}))
	h.mu.Lock()
	h.conns[hc] = struct{}{}
	h.mu.Unlock()
	log.Info().Bool("console", console).Msg("consent helper connected")
	hc.send(h.liveMsg())
	if f := h.c.opts.onHelper; f != nil {
		f(hc.user, hc.session)
	}

	if d, ok := conn.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = d.SetReadDeadline(time.Time{})
	}
	for {
		m, err := readHelperMsg(r)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !isEOF(err) {
				log.Warn().Err(err).Msg("consent helper: bad message; disconnected")
			}
			break
		}
		h.handle(hc, m, log)
	}
	h.mu.Lock()
	delete(h.conns, hc)
	for id, list := range h.asked {
		h.asked[id] = slices.DeleteFunc(list, func(x *helperConn) bool { return x == hc })
	}
	h.mu.Unlock()
	hc.drop()
	<-writerDone
	log.Info().Msg("consent helper disconnected")
}

// greet reads the hello and checks it against the kernel's word.
func (h *helperServer) greet(conn *net.UnixConn, r *bufio.Reader) (*helperConn, error) {
	uid, err := peerUID(conn)
	if err != nil {
		return nil, err
	}
	conn.SetReadDeadline(time.Now().Add(helperHelloWait))
	m, err := readHelperMsg(r)
	if err != nil {
		return nil, fmt.Errorf("helper (uid %s): %w", uid, err)
	}
	if m.Type != helperHello {
		return nil, fmt.Errorf("helper (uid %s): first message %q, want hello", uid, m.Type)
	}
	u, err := user.Lookup(m.User)
	if err != nil {
		return nil, fmt.Errorf("helper (uid %s) claims user %q: no such user", uid, cleanText(m.User, 64))
	}
	if u.Uid != uid {
		return nil, fmt.Errorf("helper claims user %s but runs as uid %s: refused", u.Username, uid)
	}
	owner, err := h.sessions.owner(m.Session)
	if err != nil {
		return nil, fmt.Errorf("helper of %s claims session %q: %w", u.Username, cleanText(m.Session, 128), err)
	}
	if owner != uid {
		return nil, fmt.Errorf("helper of %s (uid %s) claims session %q, which belongs to uid %s: refused", u.Username, uid, cleanText(m.Session, 128), owner)
	}
	return &helperConn{conn: conn, user: u.Username, uid: uid, session: m.Session,
		out: make(chan []byte, helperQueue), gone: make(chan struct{})}, nil
}

// handle acts on one message from a verified helper.
func (h *helperServer) handle(hc *helperConn, m helperMsg, log zerolog.Logger) {
	switch m.Type {
	case helperAnswer:
		h.mu.Lock()
		asked := slices.Contains(h.asked[m.ID], hc)
		h.mu.Unlock()
		if !asked {
			log.Warn().Str("id", m.ID).Msg("consent helper answered a request it was not asked; ignored")
			return
		}
		a := answer{approved: m.Approved, by: hc.user, message: "denied by the user"}
		if m.Approved {
			a.message = "approved by " + hc.user + " at the machine"
		}
		switch {
		case m.Choice == ChoiceViewOnly: // the desktop question (decide checks that the choice fits the request)
			if m.Approved {
				a.choice, a.message = m.Choice, "approved view only by "+hc.user+" at the machine"
			}
		case m.Choice != "": // the restart question
			a.choice, a.message = m.Choice, "restart "+m.Choice+" chosen by "+hc.user+" at the machine"
		}
		if err := h.c.answerPending(m.ID, a); err != nil {
			log.Debug().Err(err).Str("id", m.ID).Msg("consent helper answer too late")
		}
	case helperEnd:
		if h.c.sessions == nil {
			return
		}
		if err := h.c.sessions.End(m.ID, hc.user); err != nil {
			log.Info().Err(err).Str("session_id", m.ID).Msg("consent helper: end session")
		} else {
			log.Info().Str("session_id", m.ID).Msg("session ended by the user from the helper")
		}
	default:
		log.Warn().Str("type", m.Type).Msg("consent helper sent a message only the service sends; ignored")
	}
}

// targets returns the helpers to ask by the policy: the console's, or all.
func (h *helperServer) targets() []*helperConn {
	console := ""
	if h.c.policy.Ask != AskAll {
		console = h.sessions.console()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*helperConn
	for hc := range h.conns {
		if h.c.policy.Ask == AskAll || console != "" && hc.session == console {
			out = append(out, hc)
		}
	}
	slices.SortFunc(out, func(a, b *helperConn) int { return strings.Compare(a.session, b.session) })
	return out
}

// asking names who would be asked, e.g. "alice at pc-042"; "" for nobody.
func (h *helperServer) asking(hostname string) string {
	var users []string
	for _, hc := range h.targets() {
		if !slices.Contains(users, hc.user) {
			users = append(users, hc.user)
		}
	}
	if len(users) == 0 {
		return ""
	}
	return strings.Join(users, " or ") + " at " + hostname
}

// ask shows req to the helpers the policy names and waits until ctx ends
// (the answer comes through the pending registry), then takes the prompt
// down. If every asked helper goes away first, it fails.
func (h *helperServer) ask(ctx context.Context, req Request) answer {
	targets := h.targets()
	if len(targets) == 0 {
		return answer{failed: true, message: "nobody is logged in at the machine to ask"}
	}
	h.mu.Lock()
	h.asked[req.SessionID] = targets
	h.mu.Unlock()
	msg := encodeHelperMsg(helperMsg{Type: helperAsk, ID: req.SessionID, Deadline: req.Deadline, Request: &helperRequest{
		Kind: req.kind(), Technician: req.Technician, Reason: req.Reason, Hostname: req.Hostname,
		Capabilities: req.Capabilities, Fix: req.Fix, Tonight: req.Tonight, Desktop: req.desktop,
	}})
	for _, t := range targets {
		t.send(msg)
	}
	var res answer
	gone := make(chan struct{})
	go func() { // ends when every asked helper is gone or ctx ends; ask waits for it
		defer close(gone)
		for _, t := range targets {
			select {
			case <-t.gone:
			case <-ctx.Done():
				return
			}
		}
	}()
	select {
	case <-ctx.Done():
	case <-gone:
		if ctx.Err() == nil {
			res = answer{failed: true, message: "the helper in the user's session went away before an answer"}
		}
	}
	h.mu.Lock()
	delete(h.asked, req.SessionID)
	h.mu.Unlock()
	cancel := encodeHelperMsg(helperMsg{Type: helperCancel, ID: req.SessionID})
	for _, t := range targets {
		t.send(cancel)
	}
	<-gone
	return res
}

// liveMsg lists the live sessions for the indicators.
func (h *helperServer) liveMsg() []byte {
	live := h.c.snapshot().live
	if live == nil {
		live = []Live{}
	}
	return encodeHelperMsg(helperMsg{Type: helperLive, Sessions: live})
}

// broadcastLive sends the live sessions to every helper.
func (h *helperServer) broadcastLive() {
	h.broadcast(h.liveMsg())
}

// users lists the users of the connected helpers (the users logged in to a
// graphical session), sorted.
func (h *helperServer) users() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var users []string
	for hc := range h.conns {
		if !slices.Contains(users, hc.user) {
			users = append(users, hc.user)
		}
	}
	slices.Sort(users)
	return users
}

// broadcast sends msg to every helper.
func (h *helperServer) broadcast(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for hc := range h.conns {
		hc.send(msg)
	}
}

// close stops listening, drops every helper and waits for their goroutines.
func (h *helperServer) close() error {
	h.mu.Lock()
	h.closed = true
	close(h.closing)
	for conn := range h.raw {
		conn.Close()
	}
	for hc := range h.conns {
		hc.drop()
	}
	h.mu.Unlock()
	var err error
	if h.ln != nil {
		err = h.ln.Close()
	}
	h.wg.Wait()
	if h.path != "" {
		_ = os.Remove(h.path)
	}
	return err
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
