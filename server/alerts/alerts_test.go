package alerts

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/patchbay/patchbay/internal/pgtest"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type attempt struct {
	d   store.Delivery
	err error
}

func newService(t *testing.T, st *store.Store) (*Service, chan attempt) {
	t.Helper()
	attempts := make(chan attempt, 100)
	s := New(Config{Store: st, Log: zerolog.New(zerolog.NewTestWriter(t)), RetryBase: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		AttemptTimeout: 5 * time.Second, OnAttempt: func(d store.Delivery, err error) { attempts <- attempt{d, err} }})
	s.Start()
	t.Cleanup(s.Close)
	return s, attempts
}

func waitAttempt(t *testing.T, ch chan attempt) attempt {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery attempt within 30s")
	}
	return attempt{}
}

// A webhook receiver that is down when the alert opens gets it, signed,
// once it is up: the notification is retried with backoff.
func TestWebhookRetriedUntilReceiverUp(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	// An address nobody listens on yet.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	secret := "s3cret-hook-key"
	if _, err := st.CreateAlertRoute(ctx, store.AlertRoute{SiteID: store.AllSites, MinSeverity: store.SeverityWarning, Kind: store.RouteWebhook,
		Target: "http://" + addr + "/hook", Secret: secret}, time.Now()); err != nil {
		t.Fatal(err)
	}
	s, attempts := newService(t, st)
	// Below the route's minimum severity: not sent.
	if _, err := s.Raise(ctx, Alert{Kind: KindCheck, Check: "low", Severity: store.SeverityInfo, Summary: "fyi"}); err != nil {
		t.Fatal(err)
	}
	a, err := s.Raise(ctx, Alert{Kind: KindJobHalted, Check: "job-1", Severity: store.SeverityCritical, Summary: "job halted"})
	if err != nil {
		t.Fatal(err)
	}
	// Two failed attempts while nothing listens.
	for range 2 {
		if at := waitAttempt(t, attempts); at.err == nil {
			t.Fatal("delivered to an address nobody listens on")
		}
	}
	type got struct {
		ev    store.AlertEvent
		valid bool
		id    string
	}
	received := make(chan got, 10)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var g got
		g.valid = r.URL.Path == "/hook" && Verify([]byte(secret), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body) &&
			!Verify([]byte("wrong"), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body)
		g.id = r.Header.Get(HeaderDelivery)
		if err := json.Unmarshal(body, &g.ev); err != nil {
			g.valid = false
		}
		received <- g
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	var g got
	select {
	case g = <-received:
	case <-time.After(30 * time.Second):
		t.Fatal("the webhook receiver got nothing within 30s of coming up")
	}
	if !g.valid || g.ev.Event != "open" || g.ev.Alert.ID != a.ID || g.ev.Alert.Severity != "critical" || g.ev.Alert.Kind != KindJobHalted {
		t.Fatalf("received %+v", g)
	}
	for at := waitAttempt(t, attempts); at.err != nil; at = waitAttempt(t, attempts) {
	}
	ds, err := st.ListDeliveries(ctx, a.ID)
	if err != nil || len(ds) != 1 || !ds[0].Done || ds[0].Attempts < 3 || ds[0].ID != g.id {
		t.Fatalf("deliveries: %+v %v", ds, err)
	}
	// Resolving sends the resolve event.
	if ok, err := s.Clear(ctx, a.Key()); err != nil || !ok {
		t.Fatalf("clear: %v %v", ok, err)
	}
	select {
	case g = <-received:
	case <-time.After(30 * time.Second):
		t.Fatal("no resolve notification")
	}
	if !g.valid || g.ev.Event != "resolve" || g.ev.Alert.State != store.AlertResolved || g.ev.Actor != SystemActor {
		t.Fatalf("resolve event %+v", g)
	}
}

// testCert returns a self-signed certificate for 127.0.0.1 and its PEM.
func testCert(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// mail is what the test SMTP server received.
type mail struct {
	from, user string
	to         []string
	data       string
	tls        bool
}

type smtpBackend struct {
	user, pass string
	got        chan mail
}

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{b: b, c: c}, nil
}

type smtpSession struct {
	b *smtpBackend
	c *smtp.Conn
	m mail
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.b.user || pass != s.b.pass {
			return errors.New("invalid credentials")
		}
		s.m.user = user
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.m.user == "" {
		return errors.New("authenticate first")
	}
	s.m.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.to = append(s.m.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.data = string(b)
	_, s.m.tls = s.c.TLSConnectionState()
	s.b.got <- s.m
	return nil
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// serveSMTP serves be on a loopback port with STARTTLS (cert) until the
// test ends.
func serveSMTP(t *testing.T, be *smtpBackend, cert tls.Certificate) net.Listener {
	t.Helper()
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.AllowInsecureAuth = false
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return ln
}

// An alert reaches a real SMTP server (emersion/go-smtp) over STARTTLS
// with authentication.
func TestMailOverSTARTTLSWithAuth(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	cert, caPEM := testCert(t)
	be := &smtpBackend{user: "relay", pass: "mail-pass", got: make(chan mail, 4)}
	ln := serveSMTP(t, be, cert)
	if _, err := st.CreateAlertRoute(ctx, store.AlertRoute{SiteID: store.AllSites, MinSeverity: store.SeverityInfo, Kind: store.RouteSMTP,
		Target: "smtp://" + ln.Addr().String(), From: "patchbay@example.com", To: []string{"oncall@example.com", "boss@example.com"},
		User: be.user, Secret: be.pass, CAPEM: caPEM}, time.Now()); err != nil {
		t.Fatal(err)
	}
	s, attempts := newService(t, st)
	a, err := s.Raise(ctx, Alert{Kind: KindSelfHealFailed, AgentID: "agent-1", Check: "disk-space", Severity: store.SeverityCritical,
		Summary: "disk still full after cacheclear"})
	if err != nil {
		t.Fatal(err)
	}
	var m mail
	select {
	case m = <-be.got:
	case <-time.After(30 * time.Second):
		t.Fatal("no mail within 30s")
	}
	if !m.tls || m.user != "relay" || m.from != "patchbay@example.com" || strings.Join(m.to, ",") != "oncall@example.com,boss@example.com" {
		t.Fatalf("mail envelope %+v", m)
	}
	for _, want := range []string{"Subject: [patchbay] OPEN critical selfheal_failed on agent-1: disk-space", "disk still full after cacheclear", a.ID} {
		if !strings.Contains(m.data, want) {
			t.Errorf("mail lacks %q:\n%s", want, m.data)
		}
	}
	if at := waitAttempt(t, attempts); at.err != nil {
		t.Fatalf("attempt: %v", at.err)
	}
	// A wrong password is an error, retried, never a silent success.
	bad := store.AlertRoute{Kind: store.RouteSMTP, Target: "smtp://" + ln.Addr().String(), From: "a@b", To: []string{"c@d"}, User: "relay", Secret: "nope", CAPEM: caPEM}
	if err := sendMail(ctx, bad, store.Delivery{ID: "x", Body: `{"event":"open","alert":{"id":"x"}}`}); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Fatalf("wrong password: %v", err)
	}
	// A CA that did not sign the server's certificate: STARTTLS fails.
	_, otherCA := testCert(t)
	bad.Secret, bad.CAPEM = be.pass, otherCA
	if err := sendMail(ctx, bad, store.Delivery{ID: "x", Body: `{"event":"open","alert":{"id":"x"}}`}); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("untrusted certificate: %v", err)
	}
}

var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "stop the tests' postgresql: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// Two relays of a tier on one PostgreSQL drain one outbox: every
// notification reaches the receiver, each attempt made by one relay; and
// what a relay queued before it stopped is sent by the other.
func TestTierDeliversEachOnceAndSurvivesARelayStop(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDB(t)
	open := func() *store.Store {
		st, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	st1, st2 := open(), open()
	secret := "tier-secret"
	var (
		mu  sync.Mutex
		got = map[string]int{} // delivery ID -> requests
	)
	all := make(chan struct{}, 100)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !Verify([]byte(secret), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		got[r.Header.Get(HeaderDelivery)]++
		mu.Unlock()
		all <- struct{}{}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if _, err := st1.CreateAlertRoute(ctx, store.AlertRoute{SiteID: store.AllSites, MinSeverity: store.SeverityInfo, Kind: store.RouteWebhook,
		Target: "http://" + ln.Addr().String() + "/", Secret: secret}, time.Now()); err != nil {
		t.Fatal(err)
	}
	// A relay that queued alerts and stopped before sending them (never
	// started its loop): nothing is lost.
	stopped := New(Config{Store: st1, Log: zerolog.New(zerolog.NewTestWriter(t))})
	const n = 20
	for i := range n {
		if _, err := stopped.Raise(ctx, Alert{Kind: KindCheck, AgentID: fmt.Sprint("agent-", i), Check: "disk", Severity: store.SeverityWarning}); err != nil {
			t.Fatal(err)
		}
	}
	attempts := make(chan attempt, 4*n)
	for _, st := range []*store.Store{st1, st2} {
		s := New(Config{Store: st, Log: zerolog.New(zerolog.NewTestWriter(t)), OnAttempt: func(d store.Delivery, err error) { attempts <- attempt{d, err} }})
		s.Start()
		t.Cleanup(s.Close)
	}
	for i := range n {
		select {
		case <-all:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d notifications received in 30s", i, n)
		}
	}
	for range n {
		if at := waitAttempt(t, attempts); at.err != nil {
			t.Fatalf("attempt failed: %v", at.err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("%d distinct notifications, want %d", len(got), n)
	}
	for id, c := range got {
		if c != 1 {
			t.Errorf("notification %s received %d times", id, c)
		}
	}
	ds, err := st2.ListDeliveries(ctx, "")
	if err != nil || len(ds) != n {
		t.Fatalf("deliveries %d %v", len(ds), err)
	}
	for _, d := range ds {
		if !d.Done || d.Attempts != 1 {
			t.Fatalf("delivery %+v", d)
		}
	}
}
