// Package link keeps an agent connected to its relay: it dials the relay's
// agent endpoint (a websocket over mutual TLS), says hello, serves the
// multiplexed link, and reconnects with jittered backoff when it drops.
//
// Cost per link, which matters to the load generator that runs thousands in
// one process: Run's goroutine, blocked reading while the link is idle; a
// heartbeat timer whose callback runs briefly every heartbeat; the
// websocket's read buffer (Options.ReadBufferSize). Write buffers come from a
// pool shared by every Link in the process, so an idle link holds none. The
// TLS configuration, dialer and request header are built once in New and
// reused for every reconnect; no file is read after New.
//
// Reconnection policy: the first attempt is immediate. After a link that
// stayed up for at least 30 seconds ends, the next attempt waits a uniform
// random delay in [0, W], where W is the reconnect window the relay sent in
// its welcome (sized to its fleet: agents online or recently active / the
// relay's reconnect rate)
// or Backoff.Base (default 1s) if it sent none, so that a fleet dropped by
// a relay restart arrives at the rate the relay can take; every further
// failure waits Backoff.Next (1s, 2s, 4s, ... capped at 60s, each with full
// jitter: uniform in [0, d]).
//
// Several relays (identity.Servers, the relays of one tier sharing the CA
// the agent pins): the first connection goes to the first; each time a
// link ends or an attempt fails, the next attempt goes to the next address
// (round robin), after the delay above, so that the agents of a lost relay
// spread over the survivors instead of arriving together.
// A link that drops sooner than 30 seconds after its welcome does not reset
// the backoff: two machines cloned with the same identity, which replace
// each other on the relay, back off instead of flapping.
//
// Liveness: the agent pings every Welcome.Heartbeat (the relay drops a link
// silent for three heartbeats) and gives up on a relay whose pongs stop for
// three heartbeats.
package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/internal/backoff"
	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/rs/zerolog"
)

// Subprotocol is the websocket subprotocol of an agent link.
const Subprotocol = "patchbay.v1"

// ConnectPath is the relay's agent endpoint, relative to the relay URL.
const ConnectPath = "/v1/agent/connect"

// Defaults for Options fields left zero.
const (
	DefaultDialTimeout      = 30 * time.Second // TCP, TLS and websocket upgrade together
	DefaultHandshakeTimeout = 10 * time.Second // hello sent to welcome received
	DefaultReadBufferSize   = 16 << 10
	DefaultWriteBufferSize  = 32 << 10
)

const (
	// stableAfter is how long a link must stay up for the backoff to start over.
	stableAfter = 30 * time.Second
	// missedHeartbeats is how many heartbeats without a pong end the link.
	missedHeartbeats = 3
	// maxPingWrite bounds one ping write.
	maxPingWrite = 10 * time.Second
	// clockSkewWarning is the clock difference with the relay worth a warning.
	clockSkewWarning = 5 * time.Minute
)

// State is where a Link is in its life.
type State int32

// States, in the order a link usually goes through them.
const (
	StateIdle       State = iota // Run has not been called
	StateConnecting              // dialing or waiting for the welcome
	StateConnected               // welcome received; the link is up
	StateWaiting                 // the link is down; waiting before the next attempt
	StateStopped                 // Run has returned
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateWaiting:
		return "waiting"
	case StateStopped:
		return "stopped"
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// Options configure a Link. The zero value works for a real agent.
type Options struct {
	// Version is the agent version reported in the inventory.
	Version string
	// Logger receives the link's log lines; an agent_id field is added. The
	// zero value discards them.
	Logger zerolog.Logger
	// Inventory returns what to report in each hello. Default: this
	// machine's inventory (agent/inventory), Version and the identity's own
	// tags, see CollectInventory. Whatever it returns is clipped to the wire
	// limits before it is sent.
	Inventory func(ctx context.Context) wire.Inventory

	// DialTimeout bounds TCP connect, TLS handshake and websocket upgrade.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the wait for the relay's welcome.
	HandshakeTimeout time.Duration
	// TLSConfig overrides identity.TLSConfig() (tests; a load generator may
	// set ClientSessionCache). It is used as is and not modified.
	TLSConfig *tls.Config
	// NetDialContext dials TCP (the load generator uses it to spread links
	// over source addresses). Default: net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ReadBufferSize and WriteBufferSize size the websocket's buffers.
	// Idle links hold only the read buffer. Defaults: 16 KiB and 32 KiB.
	ReadBufferSize, WriteBufferSize int
	// Backoff sets the retry delays (Base, Max); zero means 1s and 60s.
	Backoff backoff.Backoff

	// OnState, if set, is called on Run's goroutine whenever the state
	// changes; err is why the link went down (nil otherwise). It must not
	// block: a load generator counts with atomics here.
	OnState func(s State, err error)
	// Control handles control messages from the relay after the welcome.
	// Default: ignore them.
	Control func(env wire.Envelope) error
	// Handle serves a stream the relay opens. Default: refuse streams.
	Handle func(st *mux.Stream)
}

// Link is an agent's connection to its relay, kept up by Run.
type Link struct {
	id      *identity.Identity
	opts    Options
	log     zerolog.Logger
	targets []target // one per relay address, in identity.Servers order
	urlErr  error
	header  http.Header
	cur     atomic.Int32 // index in targets of the current or next attempt; written by Run

	state   atomic.Int32
	running atomic.Bool
	sess    atomic.Pointer[mux.Session]

	stableAfter time.Duration // stableAfter; shortened by tests
	window      atomic.Int64  // reconnect window from the last welcome (time.Duration); owned by Run
}

// writePools holds one *sync.Pool of websocket write buffers per buffer
// size, shared by every Link in the process.
var writePools sync.Map

func writePool(size int) *sync.Pool {
	p, _ := writePools.LoadOrStore(size, &sync.Pool{})
	return p.(*sync.Pool)
}

// New prepares a link for id. It does no I/O; Run connects. New is cheap
// enough to call thousands of times.
func New(id *identity.Identity, opts Options) *Link {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.ReadBufferSize <= 0 {
		opts.ReadBufferSize = DefaultReadBufferSize
	}
	if opts.WriteBufferSize <= 0 {
		opts.WriteBufferSize = DefaultWriteBufferSize
	}
	if opts.Inventory == nil {
		version, tags, hostname := opts.Version, id.Tags, id.Hostname
		opts.Inventory = func(ctx context.Context) wire.Inventory {
			inv := CollectInventory(ctx, version, tags)
			if hostname != "" {
				inv.Hostname = hostname
			}
			return inv
		}
	}
	tlsConf := opts.TLSConfig
	if tlsConf == nil {
		tlsConf = id.TLSConfig()
	}
	l := &Link{
		id:          id,
		opts:        opts,
		log:         opts.Logger.With().Str("agent_id", id.AgentID).Logger(),
		stableAfter: stableAfter,
		header:      http.Header{"User-Agent": {"patchbay-agent/" + opts.Version}},
	}
	servers := id.Servers
	if len(servers) == 0 {
		servers = []string{id.ServerURL}
	}
	for i, server := range servers {
		tc := tlsConf
		if i > 0 && opts.TLSConfig == nil {
			tc = id.TLSConfigFor(server) // that relay's host name, the same pinned CA
		}
		u, err := connectURL(server)
		if err != nil && l.urlErr == nil {
			l.urlErr = err
		}
		l.targets = append(l.targets, target{server: server, url: u, dialer: websocket.Dialer{
			NetDialContext:    opts.NetDialContext,
			Proxy:             http.ProxyFromEnvironment,
			TLSClientConfig:   tc,
			HandshakeTimeout:  opts.DialTimeout,
			ReadBufferSize:    opts.ReadBufferSize,
			WriteBufferSize:   opts.WriteBufferSize,
			WriteBufferPool:   writePool(opts.WriteBufferSize),
			Subprotocols:      []string{Subprotocol},
			EnableCompression: false,
		}})
	}
	return l
}

// target is one relay address of the agent.
type target struct {
	server string // relay base URL
	url    string // its agent endpoint, wss://
	dialer websocket.Dialer
}

// Server returns the base URL of the relay the link is connected to, or
// will try next: the relay to fetch artifacts from and renew certificates
// with. Safe from any goroutine.
func (l *Link) Server() string { return l.targets[l.cur.Load()].server }

// nextTarget is the index of the address to try after index i of n.
func nextTarget(i, n int) int { return (i + 1) % max(n, 1) }

// connectURL turns the relay URL into the agent endpoint's wss:// URL.
func connectURL(server string) (string, error) {
	s, err := identity.NormalizeServerURL(server)
	if err != nil {
		return "", fmt.Errorf("link: %w", err)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("link: %w", err)
	}
	u.Scheme = "wss"
	u.Path += ConnectPath
	return u.String(), nil
}

// State returns the link's current state; safe from any goroutine.
func (l *Link) State() State { return State(l.state.Load()) }

// Connected reports whether the link is up (welcome received, not yet lost).
func (l *Link) Connected() bool { return l.State() == StateConnected }

// Session returns the current session while connected, else nil. Use it to
// send control messages or open streams; it may end at any moment.
func (l *Link) Session() *mux.Session {
	if !l.Connected() {
		return nil
	}
	return l.sess.Load()
}

// AgentID returns the ID of the agent this link belongs to.
func (l *Link) AgentID() string { return l.id.AgentID }

func (l *Link) setState(s State, err error) {
	if State(l.state.Swap(int32(s))) == s && err == nil {
		return
	}
	if l.opts.OnState != nil {
		l.opts.OnState(s, err)
	}
}

// Run connects, serves the link, and reconnects whenever it drops, until
// ctx ends; it then closes the link (the relay sees close code 1001) and
// returns nil once every goroutine it started has ended. It returns an error
// only when the link cannot work at all (an unusable relay URL) or when Run
// is already running.
func (l *Link) Run(ctx context.Context) error {
	if l.urlErr != nil {
		return l.urlErr
	}
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("link: Run is already running")
	}
	defer l.running.Store(false)
	defer l.setState(StateStopped, nil)
	logCtx := l.log.WithContext(ctx) // inventory collection logs through zerolog.Ctx

	b := l.opts.Backoff
	b.Full = true // agents that lost one relay together spread over the window
	b.Reset()
	base, _ := limits(b)
	var delay time.Duration
	for {
		if delay > 0 && !backoff.Sleep(ctx, delay) {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		l.setState(StateConnecting, nil)
		up, err := l.once(logCtx)
		if ctx.Err() != nil {
			return nil
		}
		if up >= l.stableAfter {
			b.Reset()
			delay = rand.N(max(base, time.Duration(l.window.Load())) + 1)
		} else {
			delay = b.Next()
		}
		l.logEnd(up, err, delay)
		l.cur.Store(int32(nextTarget(int(l.cur.Load()), len(l.targets))))
		l.setState(StateWaiting, err)
	}
}

// limits returns the effective Base and Max of b.
func limits(b backoff.Backoff) (base, maxd time.Duration) {
	base, maxd = b.Base, b.Max
	if base <= 0 {
		base = backoff.DefaultBase
	}
	if maxd <= 0 {
		maxd = backoff.DefaultMax
	}
	return min(base, maxd), maxd
}

// once makes one connection and serves it until it ends. up is how long the
// link was up after the welcome (0 if it never got there).
func (l *Link) once(ctx context.Context) (up time.Duration, err error) {
	inv := Sanitize(l.opts.Inventory(ctx)) // before dialing: the relay's handshake clock is not ours to spend
	tg := &l.targets[l.cur.Load()]
	dctx, cancel := context.WithTimeout(ctx, l.opts.DialTimeout)
	ws, resp, err := tg.dialer.DialContext(dctx, tg.url, l.header)
	cancel()
	if err != nil {
		return 0, dialError(err, resp)
	}
	if got := ws.Subprotocol(); got != Subprotocol {
		ws.Close()
		return 0, fmt.Errorf("handshake: the relay answered with websocket subprotocol %q, not %q: check --server, or upgrade the relay", got, Subprotocol)
	}
	sess := mux.New(ws, mux.Config{Dialer: true, Control: l.opts.Control, Handle: l.opts.Handle})
	welcome, err := l.handshake(ctx, sess, inv)
	if err != nil {
		return 0, err
	}
	if welcome.AgentID != l.id.AgentID {
		l.log.Warn().Str("welcome_agent_id", welcome.AgentID).Msg("relay welcomed this agent under another id")
	}
	if skew := time.Since(welcome.ServerTime); skew > clockSkewWarning || skew < -clockSkewWarning {
		l.log.Warn().Str("skew", skew.Round(time.Second).String()).Msg("this machine's clock differs from the relay's; certificates and tokens depend on correct time")
	}

	// mux runs without a read timeout (the heartbeat was unknown when it was
	// created): the deadline ReadFirst left is replaced by one that each pong
	// pushes back, so a relay silent for missedHeartbeats ends the link.
	l.window.Store(int64(welcome.ReconnectWindow))
	hb := time.Duration(welcome.Heartbeat)
	silence := missedHeartbeats * hb
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(silence)) })
	ws.SetReadDeadline(time.Now().Add(silence))
	p := startPinger(ws, hb)

	start := time.Now()
	l.sess.Store(sess)
	l.setState(StateConnected, nil)
	l.log.Info().Str("server", tg.server).Str("heartbeat", hb.String()).Msg("connected to relay")
	err = sess.Run(ctx)
	up = time.Since(start)
	p.stop()
	l.sess.Store(nil)
	if perr := p.failure(); perr != nil {
		err = perr
	}
	var ce *websocket.CloseError
	var ne net.Error
	if errors.As(err, &ce) {
		err = closeError(ce)
	} else if errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("relay silent for %v (%d heartbeats): %w", silence, missedHeartbeats, ErrSilent)
	}
	return up, err
}

// handshake sends hello and waits for welcome. On failure the session is
// closed with a reason the relay logs.
func (l *Link) handshake(ctx context.Context, sess *mux.Session, inv wire.Inventory) (wire.Welcome, error) {
	var w wire.Welcome
	stop := context.AfterFunc(ctx, func() { sess.Close(websocket.CloseGoingAway, "shutting down") })
	defer stop()
	fail := func(code int, err error) (wire.Welcome, error) {
		sess.Close(code, err.Error())
		return w, fmt.Errorf("handshake: %w", err)
	}
	if err := sess.Send(wire.MsgHello, "", wire.Hello{Proto: wire.Proto, Inventory: inv}); err != nil {
		return fail(websocket.CloseGoingAway, err)
	}
	env, err := sess.ReadFirst(l.opts.HandshakeTimeout)
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			sess.Close(websocket.CloseNormalClosure, "")
			return w, fmt.Errorf("handshake: %w", closeError(ce))
		}
		var mce *mux.CloseError
		if errors.As(err, &mce) {
			return fail(mce.Code, errors.New(mce.Reason))
		}
		return fail(websocket.CloseGoingAway, fmt.Errorf("no welcome from the relay: %w", err))
	}
	if env.Type != wire.MsgWelcome {
		return fail(websocket.CloseProtocolError, fmt.Errorf("first message from the relay is %q, want %q", env.Type, wire.MsgWelcome))
	}
	if err := wire.DecodeBody(env, &w); err != nil {
		return fail(websocket.CloseProtocolError, err)
	}
	return w, nil
}

// pinger sends a websocket ping every heartbeat from a timer callback, so an
// idle link costs no goroutine between pings. stop waits for a callback in
// flight.
type pinger struct {
	ws    *websocket.Conn
	every time.Duration

	mu      sync.Mutex
	stopped bool
	timer   *time.Timer
	wg      sync.WaitGroup
	err     error // why a ping could not be sent; guarded by mu
}

func startPinger(ws *websocket.Conn, every time.Duration) *pinger {
	p := &pinger{ws: ws, every: every}
	p.mu.Lock()
	p.timer = time.AfterFunc(every, p.tick)
	p.mu.Unlock()
	return p
}

func (p *pinger) tick() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()

	err := p.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(min(p.every, maxPingWrite)))
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.stopped:
	case err == nil:
		p.timer.Reset(p.every)
	case errors.Is(err, websocket.ErrCloseSent), errors.Is(err, net.ErrClosed):
		// The link is already ending (closed by the reader, e.g. on silence):
		// the reader has the cause.
	default:
		p.err = fmt.Errorf("send heartbeat: %w", err)
		p.ws.Close() // a conn that failed a write is unusable; Run sees the read fail
	}
}

// stop stops the pings and waits for a ping being sent.
func (p *pinger) stop() {
	p.mu.Lock()
	p.stopped = true
	p.timer.Stop()
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *pinger) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
