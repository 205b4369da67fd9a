package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/backoff"
	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/wire"
)

// relay is a small TLS websocket relay speaking the agent link protocol with
// mux on its side, as server/agentlink.go does.
type relay struct {
	t         *testing.T
	srv       *httptest.Server
	ca        *certs.CA
	heartbeat time.Duration

	hellos chan wire.Hello
	errs   chan error // protocol problems seen on the relay side
	conns  atomic.Int32
	pings  atomic.Int32

	revoked   atomic.Bool // refuse client certificates at the TLS handshake
	refuse    atomic.Int32
	noPong    atomic.Bool
	noWelcome atomic.Bool
	// afterWelcome, if set, runs on connection n (from 1) after the welcome.
	afterWelcome func(n int32, sess *mux.Session)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newRelay(t *testing.T, heartbeat time.Duration) *relay {
	t.Helper()
	ca, err := certs.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return newRelayCA(t, heartbeat, ca)
}

// newRelayCA starts a relay with ca: relays of one tier share their CA.
func newRelayCA(t *testing.T, heartbeat time.Duration, ca *certs.CA) *relay {
	t.Helper()
	dir := t.TempDir()
	cert, err := certs.LoadOrCreateServerCert(dir, ca, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{t: t, ca: ca, heartbeat: heartbeat, hellos: make(chan wire.Hello, 64), errs: make(chan error, 64)}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	h := http.NewServeMux()
	h.HandleFunc("GET /v1/agent/connect", r.connect)
	r.srv = httptest.NewUnstartedServer(h)
	r.srv.TLS = ca.ServerTLSConfig(cert)
	r.srv.TLS.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.VerifiedChains) > 0 && r.revoked.Load() {
			return errors.New("agent is revoked")
		}
		return nil
	}
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	r.srv.StartTLS()
	t.Cleanup(func() {
		r.srv.Close()
		r.cancel()
		r.wg.Wait()
	})
	return r
}

func (r *relay) fail(format string, args ...any) {
	select {
	case r.errs <- fmt.Errorf(format, args...):
	default:
	}
}

func (r *relay) connect(w http.ResponseWriter, req *http.Request) {
	if code := int(r.refuse.Load()); code != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, `{"error":"agent link: agent is revoked; enroll it again with a new token"}`)
		return
	}
	if req.Header.Get("Origin") != "" {
		r.fail("agent sent an Origin header %q", req.Header.Get("Origin"))
	}
	if len(req.TLS.VerifiedChains) == 0 {
		r.fail("agent presented no client certificate")
		http.Error(w, "no certificate", http.StatusUnauthorized)
		return
	}
	agentID, err := certs.AgentID(req.TLS.PeerCertificates[0])
	if err != nil {
		r.fail("agent id: %v", err)
		return
	}
	up := websocket.Upgrader{Subprotocols: []string{Subprotocol}}
	ws, err := up.Upgrade(w, req, nil)
	if err != nil {
		r.fail("upgrade: %v", err)
		return
	}
	r.wg.Add(1)
	defer r.wg.Done()
	n := r.conns.Add(1)
	sess := mux.New(ws, mux.Config{})
	ws.SetPingHandler(func(data string) error {
		r.pings.Add(1)
		if r.noPong.Load() {
			return nil
		}
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	env, err := sess.ReadFirst(5 * time.Second)
	if err != nil {
		r.fail("read hello: %v", err)
		sess.Close(websocket.CloseProtocolError, "no hello")
		return
	}
	var hello wire.Hello
	if env.Type != wire.MsgHello {
		err = fmt.Errorf("first message %q", env.Type)
	} else {
		err = wire.DecodeBody(env, &hello)
	}
	if err != nil {
		r.fail("hello: %v", err)
		sess.Close(websocket.CloseProtocolError, err.Error())
		return
	}
	r.hellos <- hello
	if !r.noWelcome.Load() {
		err = sess.Send(wire.MsgWelcome, "", wire.Welcome{
			Proto: wire.Proto, AgentID: agentID, Heartbeat: wire.Duration(r.heartbeat), ServerTime: time.Now(),
		})
		if err != nil {
			return
		}
		if r.afterWelcome != nil {
			r.afterWelcome(n, sess)
		}
	}
	sess.Run(r.ctx)
}

// identityFor issues an agent identity from ca for the relay at url.
func identityFor(t *testing.T, ca *certs.CA, url string) *identity.Identity {
	t.Helper()
	key, err := certs.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := certs.CreateCSR(key, "test")
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.SignAgentCSR(csr, uuid.NewString(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.New("", url, map[string]string{"role": "kiosk"}, key, cert, ca.Cert, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// event is one OnState call.
type event struct {
	state State
	err   error
}

// agent runs a Link against r and records its state changes.
type agent struct {
	link   *Link
	events chan event
	cancel context.CancelFunc
	done   chan error
}

func startAgent(t *testing.T, r *relay, id *identity.Identity, tweak func(*Options)) *agent {
	t.Helper()
	a := &agent{events: make(chan event, 256), done: make(chan error, 1)}
	opts := Options{
		Version: "test-1.0",
		Backoff: backoff.Backoff{Base: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		OnState: func(s State, err error) {
			select {
			case a.events <- event{s, err}:
			default:
			}
		},
	}
	if tweak != nil {
		tweak(&opts)
	}
	a.link = New(id, opts)
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() { a.done <- a.link.Run(ctx) }()
	t.Cleanup(func() { a.stop(t) })
	return a
}

// stop cancels Run and checks it returns nil promptly.
func (a *agent) stop(t *testing.T) {
	t.Helper()
	a.cancel()
	select {
	case err, ok := <-a.done:
		if ok && err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
		if ok {
			close(a.done)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of cancel")
	}
	if s := a.link.State(); s != StateStopped {
		t.Errorf("state after Run = %v", s)
	}
}

// waitFor waits for an OnState event matching ok.
func (a *agent) waitFor(t *testing.T, what string, ok func(event) bool) event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-a.events:
			if ok(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func connected(ev event) bool { return ev.state == StateConnected }

func (r *relay) hello(t *testing.T) wire.Hello {
	t.Helper()
	select {
	case h := <-r.hellos:
		return h
	case err := <-r.errs:
		t.Fatalf("relay: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no hello")
	}
	return wire.Hello{}
}

func (r *relay) noErrors(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.errs:
		t.Errorf("relay: %v", err)
	default:
	}
}

// waitGoroutines waits for the goroutine count to fall back to base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConnectHelloPingsAndStop(t *testing.T) {
	r := newRelay(t, time.Second)
	id := identityFor(t, r.ca, r.srv.URL)
	base := runtime.NumGoroutine()

	a := startAgent(t, r, id, nil)
	h := r.hello(t)
	if h.Proto != wire.Proto {
		t.Errorf("hello proto %d", h.Proto)
	}
	if err := h.Inventory.Validate(); err != nil {
		t.Errorf("hello inventory invalid: %v", err)
	}
	if h.Inventory.Version != "test-1.0" || h.Inventory.Tags["role"] != "kiosk" ||
		h.Inventory.OS != runtime.GOOS || h.Inventory.Arch != runtime.GOARCH || h.Inventory.Hostname == "" {
		t.Errorf("hello inventory %+v", h.Inventory)
	}
	a.waitFor(t, "connected", connected)
	if !a.link.Connected() || a.link.Session() == nil {
		t.Error("Connected() false after the welcome")
	}

	// Pings arrive every heartbeat, and the link survives them: the
	// handshake's read deadline must not end it after 10 seconds' worth.
	deadline := time.Now().Add(3500 * time.Millisecond)
	for r.pings.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := r.pings.Load(); n < 3 {
		t.Errorf("%d pings in 3.5s with a 1s heartbeat", n)
	}
	if !a.link.Connected() || r.conns.Load() != 1 {
		t.Errorf("link dropped during pings: connected=%v conns=%d", a.link.Connected(), r.conns.Load())
	}
	r.noErrors(t)

	start := time.Now()
	a.stop(t)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Run took %v to return after cancel", d)
	}
	if a.link.Session() != nil {
		t.Error("Session() not nil after Run")
	}
	waitGoroutines(t, base)
}

func TestReconnectsAfterRelayClosesLink(t *testing.T) {
	r := newRelay(t, time.Second)
	r.afterWelcome = func(n int32, sess *mux.Session) {
		if n == 1 {
			sess.Close(websocket.ClosePolicyViolation, "replaced by a newer connection from the same agent")
		}
	}
	a := startAgent(t, r, identityFor(t, r.ca, r.srv.URL), nil)
	a.waitFor(t, "first connection", connected)
	ev := a.waitFor(t, "link lost", func(ev event) bool { return ev.state == StateWaiting })
	if !errors.Is(ev.err, ErrClosed) || !strings.Contains(ev.err.Error(), "replaced by a newer connection") ||
		!strings.Contains(ev.err.Error(), fmt.Sprint(websocket.ClosePolicyViolation)) {
		t.Errorf("link ended with %v, want the relay's close code and reason", ev.err)
	}
	a.waitFor(t, "second connection", connected)
	if n := r.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	r.hello(t)
	r.hello(t)
	r.noErrors(t)
}

func TestRevokedAtTLSHandshakeKeepsRetrying(t *testing.T) {
	r := newRelay(t, time.Second)
	r.revoked.Store(true)
	a := startAgent(t, r, identityFor(t, r.ca, r.srv.URL), nil)
	for i := 0; i < 2; i++ {
		ev := a.waitFor(t, "refusal", func(ev event) bool { return ev.state == StateWaiting })
		if !errors.Is(ev.err, ErrRejected) || !strings.Contains(ev.err.Error(), "revoked") {
			t.Fatalf("attempt %d ended with %v, want ErrRejected naming revocation", i, ev.err)
		}
	}
	// Un-revoked (say, restored from backup): the agent gets in by itself.
	r.revoked.Store(false)
	a.waitFor(t, "connection after un-revoking", connected)
}

func TestHTTPRefusalCarriesRelayMessage(t *testing.T) {
	r := newRelay(t, time.Second)
	r.refuse.Store(http.StatusForbidden)
	a := startAgent(t, r, identityFor(t, r.ca, r.srv.URL), nil)
	ev := a.waitFor(t, "refusal", func(ev event) bool { return ev.state == StateWaiting })
	if !errors.Is(ev.err, ErrRejected) || !strings.Contains(ev.err.Error(), "enroll it again with a new token") {
		t.Fatalf("refusal %v, want ErrRejected with the relay's message", ev.err)
	}
}

func TestUntrustedRelay(t *testing.T) {
	r := newRelay(t, time.Second)
	other, err := certs.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, r, identityFor(t, other, r.srv.URL), nil)
	ev := a.waitFor(t, "refusal", func(ev event) bool { return ev.state == StateWaiting })
	if !errors.Is(ev.err, ErrUntrusted) {
		t.Fatalf("link to a relay of another CA ended with %v, want ErrUntrusted", ev.err)
	}
	if n := r.conns.Load(); n != 0 {
		t.Errorf("%d links to an untrusted relay", n)
	}
}

func TestSilentRelayIsDropped(t *testing.T) {
	if testing.Short() {
		t.Skip("waits three heartbeats")
	}
	r := newRelay(t, time.Second)
	r.noPong.Store(true)
	a := startAgent(t, r, identityFor(t, r.ca, r.srv.URL), nil)
	a.waitFor(t, "connected", connected)
	start := time.Now()
	ev := a.waitFor(t, "silence detected", func(ev event) bool { return ev.state == StateWaiting })
	if !errors.Is(ev.err, ErrSilent) {
		t.Fatalf("link ended with %v, want ErrSilent", ev.err)
	}
	if d := time.Since(start); d < 2500*time.Millisecond || d > 5*time.Second {
		t.Errorf("silence detected after %v, want about 3 heartbeats", d)
	}
	a.waitFor(t, "reconnected", connected)
}

func TestCancelDuringHandshake(t *testing.T) {
	r := newRelay(t, time.Second)
	r.noWelcome.Store(true)
	id := identityFor(t, r.ca, r.srv.URL)
	base := runtime.NumGoroutine()
	a := startAgent(t, r, id, nil)
	r.hello(t)
	time.Sleep(50 * time.Millisecond)
	if a.link.State() != StateConnecting {
		t.Errorf("state %v while waiting for the welcome", a.link.State())
	}
	start := time.Now()
	a.stop(t)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Run took %v to return when cancelled during the handshake", d)
	}
	waitGoroutines(t, base)
}

func TestConnectURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://relay:8443":      "wss://relay:8443/v1/agent/connect",
		"https://example.com/pb/": "wss://example.com/pb/v1/agent/connect",
		"https://[::1]:8443":      "wss://[::1]:8443/v1/agent/connect",
	} {
		if got, err := connectURL(in); err != nil || got != want {
			t.Errorf("connectURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := connectURL("http://relay"); err == nil {
		t.Error("connectURL accepted http")
	}
}

func TestSanitize(t *testing.T) {
	inv := wire.Inventory{
		Hostname:  "bad\nhost",
		OS:        "linux",
		Arch:      "amd64",
		OSVersion: strings.Repeat("é", 200), // 400 bytes
		Version:   "1.0\x00",
		Users:     []string{"alice", strings.Repeat("u", 100), ""},
		IPs:       []string{"10.0.0.1", "not-an-ip", "fe80::1%eth0"},
		Tags:      map[string]string{"ok": "yes", "bad key": "x", "k": "bad value"},
	}
	for i := 0; i < 300; i++ {
		inv.IPs = append(inv.IPs, fmt.Sprintf("10.1.%d.%d", i/250, i%250))
	}
	if inv.Validate() == nil {
		t.Fatal("test inventory is already valid")
	}
	out := Sanitize(inv)
	if err := out.Validate(); err != nil {
		t.Fatalf("sanitized inventory invalid: %v", err)
	}
	if out.Hostname != "bad host" || len(out.OSVersion) > wire.MaxFieldLen || out.Version != "1.0" {
		t.Errorf("fields %q %d %q", out.Hostname, len(out.OSVersion), out.Version)
	}
	if len(out.Users) != 2 || len(out.IPs) != wire.MaxListLen || out.IPs[0] != "10.0.0.1" {
		t.Errorf("users %q, %d ips", out.Users, len(out.IPs))
	}
	if len(out.Tags) != 1 || out.Tags["ok"] != "yes" {
		t.Errorf("tags %v", out.Tags)
	}
	if got := Sanitize(wire.Inventory{}); got.Hostname != unknownHost || got.Validate() != nil {
		t.Errorf("empty inventory sanitized to %+v (%v)", got, got.Validate())
	}
}

// TestFailsOverToNextRelay: an agent with two relay addresses connects to
// the first; when that relay dies it reconnects to the second, with the
// same pinned CA; the address rotation wraps around.
func TestFailsOverToNextRelay(t *testing.T) {
	r1 := newRelay(t, time.Second)
	r2 := newRelayCA(t, time.Second, r1.ca)
	id := identityFor(t, r1.ca, r1.srv.URL)
	if err := id.SetServers([]string{r1.srv.URL, r2.srv.URL, r1.srv.URL + "/"}); err != nil {
		t.Fatal(err)
	}
	if len(id.Servers) != 2 {
		t.Fatalf("servers %v, want the duplicate dropped", id.Servers)
	}
	a := startAgent(t, r1, id, nil)
	a.waitFor(t, "connection to the first relay", connected)
	r1.hello(t)
	if got := a.link.Server(); got != r1.srv.URL {
		t.Fatalf("Server() = %s, want the first relay %s", got, r1.srv.URL)
	}
	r1.cancel()
	r1.srv.Close()
	a.waitFor(t, "link lost", func(ev event) bool { return ev.state == StateWaiting })
	a.waitFor(t, "connection to the second relay", connected)
	r2.hello(t)
	if got := a.link.Server(); got != r2.srv.URL {
		t.Fatalf("Server() = %s after failover, want %s", got, r2.srv.URL)
	}
	if n := r2.conns.Load(); n != 1 {
		t.Fatalf("second relay saw %d connections, want 1", n)
	}
	r2.noErrors(t)
}

func TestNextTarget(t *testing.T) {
	for _, c := range []struct{ i, n, want int }{{0, 1, 0}, {0, 2, 1}, {1, 2, 0}, {2, 3, 0}, {0, 0, 0}} {
		if got := nextTarget(c.i, c.n); got != c.want {
			t.Errorf("nextTarget(%d, %d) = %d, want %d", c.i, c.n, got, c.want)
		}
	}
}
