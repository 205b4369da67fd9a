package session

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/receipt"
	"github.com/patchbay/patchbay/internal/wire"
)

const testAgentID = "0193a1b2-0000-7000-8000-00000000a9e1"

// agentCert returns a CA pool and an agent certificate from a fresh CA, as
// enrollment makes them.
func agentCert(t *testing.T, id string) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	ca, err := certs.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, err := certs.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := certs.CreateCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.SignAgentCSR(csr, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// checkReceipt verifies a signed receipt as the relay does and returns it.
func (r *rig) checkReceipt(s *receipt.Signed) receipt.Receipt {
	r.t.Helper()
	if s == nil {
		r.t.Fatal("no receipt")
	}
	rc, err := s.Check(r.roots, testAgentID)
	if err != nil {
		r.t.Fatal(err)
	}
	return rc
}

// rig is an agent's session manager on one end of a real mux link and a
// test-controlled "relay" on the other, which may behave as a compromised
// relay would.
type rig struct {
	t       *testing.T
	relay   *mux.Session
	answers chan wire.SessionAnswer
	ends    chan wire.SessionEnd
	pending chan wire.SessionPending
	roots   *x509.CertPool // the "relay" CA that certified the agent's key
	cas     *certs.SSHCAs
	mgr     *Manager
	answer  string // file the exec consent program reads: approve, deny or hang
}

func newRig(t *testing.T, streamWait time.Duration) *rig {
	t.Helper()
	return newRigPolicy(t, streamWait, nil)
}

// newRigPolicy is newRig with the consent policy changed by edit.
func newRigPolicy(t *testing.T, streamWait time.Duration, edit func(*consent.Policy)) *rig {
	t.Helper()
	return newRigConfig(t, streamWait, edit, nil)
}

// newRigConfig is newRigPolicy with the manager's configuration changed by
// editCfg before it starts.
func newRigConfig(t *testing.T, streamWait time.Duration, edit func(*consent.Policy), editCfg func(*Config)) *rig {
	t.Helper()
	r := &rig{t: t, answers: make(chan wire.SessionAnswer, 8), ends: make(chan wire.SessionEnd, 8), pending: make(chan wire.SessionPending, 8)}
	dir := t.TempDir()
	var err error
	if r.cas, err = certs.LoadOrCreateSSHCAs(filepath.Join(dir, "relay")); err != nil {
		t.Fatal(err)
	}
	keys, err := OpenKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	hostCert, err := r.cas.SignHostCert(keys.host.PublicKey(), "agent", []string{"agent"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keys.cert = hostCert
	if err := keys.PinUserCA(string(ssh.MarshalAuthorizedKey(r.cas.User.PublicKey()))); err != nil {
		t.Fatal(err)
	}

	r.answer = filepath.Join(dir, "answer")
	os.WriteFile(r.answer, []byte("approve"), 0o600)
	prog := filepath.Join(dir, "consent.sh")
	os.WriteFile(prog, []byte("#!/bin/sh\ncat >/dev/null\ncase \"$(cat "+r.answer+")\" in approve) exit 0;; deny) echo no >&2; exit 1;; esac\nsleep 30\n"), 0o700)
	pol := consent.Policy{Mode: consent.ModePrompt, Backend: "exec:" + prog, Timeout: 10 * time.Second}
	if edit != nil {
		edit(&pol)
	}
	cons, err := consent.New(pol, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cons.Close() })

	// The "relay": a mux session on the server side of a websocket.
	relayReady := make(chan *mux.Session, 1)
	relayDone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, req, nil)
		if err != nil {
			return
		}
		s := mux.New(ws, mux.Config{Control: func(env wire.Envelope) error {
			switch env.Type {
			case wire.MsgSessionAnswer:
				var a wire.SessionAnswer
				if err := wire.DecodeBody(env, &a); err != nil {
					return err
				}
				r.answers <- a
			case wire.MsgSessionPending:
				var p wire.SessionPending
				if err := wire.DecodeBody(env, &p); err != nil {
					return err
				}
				r.pending <- p
			case wire.MsgSessionEnd:
				var e wire.SessionEnd
				if err := wire.DecodeBody(env, &e); err != nil {
					return err
				}
				r.ends <- e
			}
			return nil
		}})
		relayReady <- s
		s.Run(context.Background())
		close(relayDone)
	}))
	t.Cleanup(srv.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var agent *mux.Session
	var cert tls.Certificate
	r.roots, cert = agentCert(t, testAgentID)
	cfg := Config{
		AgentID: testAgentID, Hostname: "pc-1", Consent: cons, Mode: consent.ModePrompt, Keys: keys.Keys,
		Cert:       cert,
		Send:       func(typ string, body any) error { return agent.Send(typ, "", body) },
		Open:       func(ctx context.Context, kind string) (io.WriteCloser, error) { return agent.Open(ctx, kind) },
		StreamWait: streamWait, Log: zerolog.Nop(),
	}
	if editCfg != nil {
		editCfg(&cfg)
	}
	r.mgr = New(cfg)
	agent = mux.New(ws, mux.Config{Dialer: true, Handle: r.mgr.HandleStream, Control: func(env wire.Envelope) error {
		_, err := r.mgr.Control(env)
		return err
	}})
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Run(context.Background()) }()
	r.relay = <-relayReady
	t.Cleanup(func() {
		r.mgr.Close()
		agent.Close(websocket.CloseNormalClosure, "")
		<-agentDone
		<-relayDone
	})
	return r
}

func (r *rig) request(technician string, caps ...string) string {
	r.t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	if err := r.relay.Send(wire.MsgSessionRequest, "", wire.SessionRequest{SessionID: id, Technician: technician, Reason: "test", Capabilities: caps}); err != nil {
		r.t.Fatal(err)
	}
	return id
}

func (r *rig) nextAnswer() wire.SessionAnswer {
	r.t.Helper()
	select {
	case a := <-r.answers:
		return a
	case <-time.After(15 * time.Second):
		r.t.Fatal("no answer from the agent")
	}
	return wire.SessionAnswer{}
}

// dial runs an SSH client as technician on a stream the relay opens for id.
func (r *rig) dial(id, technician string) (*ssh.Client, error) {
	r.t.Helper()
	st, err := r.relay.Open(context.Background(), wire.SSHStreamKind(id))
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(mustKey(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	cert, err := r.cas.SignUserCert(signer.PublicKey(), technician, time.Hour, time.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	cs, _ := ssh.NewCertSigner(cert, signer)
	st.SetDeadline(time.Now().Add(10 * time.Second))
	c, chans, reqs, err := ssh.NewClientConn(st, "agent:22", &ssh.ClientConfig{
		User: technician, Auth: []ssh.AuthMethod{ssh.PublicKeys(cs)},
		HostKeyCallback: (&ssh.CertChecker{IsHostAuthority: func(k ssh.PublicKey, _ string) bool {
			return string(k.Marshal()) == string(r.cas.Host.PublicKey().Marshal())
		}}).CheckHostKey,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	st.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

func TestApprovedSessionRunsOnceForItsTechnician(t *testing.T) {
	r := newRig(t, 5*time.Second)
	id := r.request("alice", wire.CapExec)
	if a := r.nextAnswer(); !a.Approved || a.SessionID != id || a.Mode != "prompt" || a.Backend != "exec" {
		t.Fatalf("answer: %+v", a)
	}
	// Bob's certificate on alice's approved session: refused.
	if _, err := r.dial(id, "bob"); err == nil {
		t.Fatal("another technician's certificate was accepted")
	}
	// Once refused, the approval is spent: even alice cannot use it now.
	if _, err := r.dial(id, "alice"); err == nil {
		t.Fatal("an approval was used twice")
	}

	id = r.request("alice", wire.CapExec)
	r.nextAnswer()
	c, err := r.dial(id, "alice")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := c.NewSession()
	out, err := s.Output("echo hi")
	if err != nil || string(out) != "hi\n" {
		t.Fatalf("exec: %q %v", out, err)
	}
	if live := r.mgr.Live(); len(live) != 1 || live[0].ID != id || live[0].Technician != "alice" {
		t.Errorf("live: %+v", live)
	}
	// A second stream for the same, live session is refused.
	if _, err := r.dial(id, "alice"); err == nil {
		t.Fatal("a second stream for a live session was served")
	}
	if err := r.mgr.End(id, "jane"); err != nil {
		t.Fatal(err)
	}
	for e := range r.ends { // earlier sessions' ends come first
		if e.SessionID != id {
			if !strings.Contains(e.Reason, "handshake") {
				t.Errorf("refused stream ended with %+v", e)
			}
			continue
		}
		if e.By != "user" || !strings.Contains(e.Reason, "ended by the user") {
			t.Errorf("session_end: %+v", e)
		}
		if rc := r.checkReceipt(e.Receipt); rc.Decision != receipt.Ended || rc.By != "user" || rc.ID != id || rc.Message != e.Reason {
			t.Errorf("end receipt: %+v", rc)
		}
		break
	}
	if err := r.mgr.End(id, "jane"); !errors.Is(err, ErrNoSession) {
		t.Errorf("ending an ended session: %v", err)
	}
}

// With Policy.Remember, an approval covers the same technician's next
// request; the user ending sessions forgets it.
func TestUserEndForgetsRememberedApprovals(t *testing.T) {
	r := newRigPolicy(t, 5*time.Second, func(p *consent.Policy) { p.Remember = time.Minute })
	if a := r.nextAnswer2(r.request("alice", wire.CapExec)); !a.Approved {
		t.Fatalf("first request: %+v", a)
	}
	os.WriteFile(r.answer, []byte("deny"), 0o600) // the user would now say no
	if a := r.nextAnswer2(r.request("alice", wire.CapExec)); !a.Approved || !strings.Contains(a.Message, "earlier approval") {
		t.Fatalf("second request was not covered by the first approval: %+v", a)
	}
	if a := r.nextAnswer2(r.request("bob", wire.CapExec)); a.Approved {
		t.Fatalf("bob's request was covered by alice's approval: %+v", a)
	}
	if err := r.mgr.End("all", "jane"); err != nil {
		t.Fatal(err)
	}
	if a := r.nextAnswer2(r.request("alice", wire.CapExec)); a.Approved {
		t.Fatalf("after the user ended sessions, alice was still approved: %+v", a)
	}
}

// nextAnswer2 returns the answer to session id.
func (r *rig) nextAnswer2(id string) wire.SessionAnswer {
	r.t.Helper()
	a := r.nextAnswer()
	if a.SessionID != id {
		r.t.Fatalf("answer for %s, want %s", a.SessionID, id)
	}
	return a
}

func TestStreamsTheAgentDidNotApproveAreRefused(t *testing.T) {
	r := newRig(t, 300*time.Millisecond)
	// Never requested.
	if _, err := r.dial(uuid.Must(uuid.NewV7()).String(), "alice"); err == nil {
		t.Fatal("a stream for a session never requested was served")
	}
	// Denied by the user.
	os.WriteFile(r.answer, []byte("deny"), 0o600)
	id := r.request("alice", wire.CapShell)
	if a := r.nextAnswer(); a.Approved || a.Message != "no" {
		t.Fatalf("denied answer: %+v", a)
	}
	if _, err := r.dial(id, "alice"); err == nil {
		t.Fatal("a stream for a denied session was served")
	}
	// Approved, but the stream comes after the approval expired.
	os.WriteFile(r.answer, []byte("approve"), 0o600)
	id = r.request("alice", wire.CapShell)
	r.nextAnswer()
	time.Sleep(time.Second)
	if _, err := r.dial(id, "alice"); err == nil {
		t.Fatal("a stream after the approval expired was served")
	}
	// A stream of a kind the agent does not serve.
	st, err := r.relay.Open(context.Background(), "rec."+id)
	if err == nil {
		st.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := st.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("an unknown stream kind stayed open: %v", err)
		}
	}
}

func TestRelayWithdrawsAPendingRequest(t *testing.T) {
	r := newRig(t, 5*time.Second)
	os.WriteFile(r.answer, []byte("hang"), 0o600)
	id := r.request("alice", wire.CapShell)
	time.Sleep(200 * time.Millisecond) // the prompt is up
	r.relay.Send(wire.MsgSessionEnd, "", wire.SessionEnd{SessionID: id, By: "technician", Reason: "the technician left"})
	a := r.nextAnswer()
	if a.Approved {
		t.Fatalf("a withdrawn request was approved: %+v", a)
	}
	if _, err := r.dial(id, "alice"); err == nil {
		t.Fatal("a withdrawn request's stream was served")
	}
}

func TestMalformedSessionMessagesCloseTheLink(t *testing.T) {
	m := New(Config{Log: zerolog.Nop()})
	defer m.Close()
	for _, body := range []string{
		`{"session_id":"x","technician":"alice","reason":"","capabilities":["shell"],"requested_at":"2026-01-01T00:00:00Z"}`,
		`{"session_id":"0193a1b2-0000-7000-8000-000000000001","technician":"alice","reason":"","capabilities":["root"],"requested_at":"2026-01-01T00:00:00Z"}`,
		`{"session_id":"0193a1b2-0000-7000-8000-000000000001","technician":"alice","smuggled":1}`,
	} {
		handled, err := m.Control(wire.Envelope{Type: wire.MsgSessionRequest, Body: json.RawMessage(body)})
		var ce *mux.CloseError
		if !handled || !errors.As(err, &ce) {
			t.Errorf("%s: handled %v, err %v", body, handled, err)
		}
	}
	if handled, _ := m.Control(wire.Envelope{Type: wire.MsgRun}); handled {
		t.Error("the session manager took a run message")
	}
}

func mustKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Each decision reaches the relay signed by the agent's key, and the relay
// is told while a person is being asked.
func TestDecisionsAreSignedAndTheWaitIsAnnounced(t *testing.T) {
	r := newRig(t, 5*time.Second)
	id := r.request("alice", wire.CapExec, wire.CapSFTP)
	select {
	case p := <-r.pending:
		if p.SessionID != id || time.Until(p.Deadline) < 5*time.Second || time.Until(p.Deadline) > 11*time.Second {
			t.Errorf("session_pending: %+v", p)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no session_pending")
	}
	a := r.nextAnswer()
	rc := r.checkReceipt(a.Receipt)
	if rc.Kind != receipt.KindSession || rc.ID != id || rc.Decision != receipt.Approved || rc.Technician != "alice" ||
		rc.Reason != "test" || strings.Join(rc.Capabilities, ",") != "exec,sftp" || rc.By != a.By {
		t.Errorf("approval receipt %+v for answer %+v", rc, a)
	}

	os.WriteFile(r.answer, []byte("deny"), 0o600)
	id = r.request("bob", wire.CapShell)
	a = r.nextAnswer()
	if rc := r.checkReceipt(a.Receipt); a.Approved || rc.Decision != receipt.Denied || rc.ID != id || rc.Technician != "bob" || rc.Message != a.Message {
		t.Errorf("denial receipt %+v for answer %+v", rc, a)
	}
}

// Without a key to sign with, the agent approves nothing.
func TestNoSignerDeniesEverything(t *testing.T) {
	r := newRigConfig(t, 5*time.Second, nil, func(c *Config) { c.Cert = tls.Certificate{} })
	r.request("alice", wire.CapExec)
	if a := r.nextAnswer(); a.Approved || a.Receipt != nil || !strings.Contains(a.Message, "could not sign") {
		t.Errorf("answer without a signer: %+v", a)
	}
	if len(r.mgr.Live()) != 0 {
		t.Error("a session is live")
	}
}
