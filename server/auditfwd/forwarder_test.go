package auditfwd_test

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/server/auditfwd"
	"github.com/patchbay/patchbay/server/auditfwd/syslogtest"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// receiverTLS makes a CA and a server certificate for 127.0.0.1 in dir, and
// returns the receiver's TLS config and the CA file a forwarder trusts.
func receiverTLS(t *testing.T, dir string) (*tls.Config, string) {
	t.Helper()
	ca, err := certs.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certs.LoadOrCreateServerCert(dir, ca, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, filepath.Join(dir, certs.CACertFile)
}

func startReceiver(t *testing.T, addr string, cfg *tls.Config) *syslogtest.Receiver {
	t.Helper()
	r, err := syslogtest.Start(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func appendN(t *testing.T, st *store.Store, n int, action string) {
	t.Helper()
	for i := range n {
		if _, err := st.AppendAudit(context.Background(), audit.Record{Actor: "alice (admin)", Action: action, Target: "t",
			Detail: map[string]string{"i": string(rune('a' + i%26)), "quote": `"]\`}}); err != nil {
			t.Fatal(err)
		}
	}
}

func newForwarder(t *testing.T, st *store.Store, target auditfwd.Target) *auditfwd.Forwarder {
	t.Helper()
	f, err := auditfwd.New(auditfwd.Config{Target: target, Store: st, Hostname: "relay-test", Version: "test",
		Poll: 20 * time.Millisecond, Settle: 50 * time.Millisecond, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	f.Start()
	t.Cleanup(f.Close)
	return f
}

func waitSeq(t *testing.T, r *syslogtest.Receiver, seq int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Wait(ctx, func(m []syslogtest.Received) bool { return syslogtest.Highest(m) >= seq }); err != nil {
		t.Fatalf("waiting for record %d (have up to %d): %v", seq, syslogtest.Highest(r.Messages()), err)
	}
}

// renumber gives a later receiver's connections numbers after an earlier's.
func renumber(msgs []syslogtest.Received, by int) []syslogtest.Received {
	for i := range msgs {
		msgs[i].Conn += by
	}
	return msgs
}

// waitStatus waits for the forwarder's state (it changes on its own
// goroutine; there is no event to wait on from outside).
func waitStatus(t *testing.T, f *auditfwd.Forwarder, what string, cond func(auditfwd.Status) bool) auditfwd.Status {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for {
		s, err := f.Status(context.Background())
		if err == nil && cond(s) {
			return s
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s: %+v %v", what, s, err)
		}
	}
}

func TestForwardOverTLSThroughAnOutageAndARestart(t *testing.T) {
	st := openStore(t)
	tlsCfg, caFile := receiverTLS(t, t.TempDir())
	recv := startReceiver(t, "127.0.0.1:0", tlsCfg)
	addr := recv.Addr()
	appendN(t, st, 30, "token.create")
	target := auditfwd.Target{URL: "tls://" + addr, CAFile: caFile}
	fwd := newForwarder(t, st, target)
	if fwd.Name() != "tls://"+addr {
		t.Errorf("name %q", fwd.Name())
	}
	waitSeq(t, recv, 30)
	msgs := recv.Messages()
	if _, err := syslogtest.CheckAudit(msgs, 1, 30); err != nil {
		t.Fatal(err)
	}
	m := msgs[0].Msg
	if m.Hostname != "relay-test" || m.MsgID != "token.create" || m.Pri != 109 {
		t.Errorf("first message: %+v", m)
	}
	first, _ := st.QueryAudit(context.Background(), store.AuditQuery{Limit: 1, Scope: store.Scope{All: true}})
	rec, _ := m.Element(auditfwd.RecordID)
	det, _ := m.Element(auditfwd.DetailID)
	if h, _ := rec.Get("hash"); h != first[0].Hash || !m.Timestamp.Equal(first[0].Time) {
		t.Errorf("record 1 as sent: %+v", m)
	}
	if q, _ := det.Get("quote"); q != `"]\` {
		t.Errorf("detail quote = %q", q)
	}
	s := waitStatus(t, fwd, "the cursor to reach 30", func(s auditfwd.Status) bool { return s.Delivered == 30 })
	if !s.Connected || s.Lag != 0 || s.Head != 30 {
		t.Errorf("status %+v", s)
	}

	// The receiver goes down; the relay goes on writing.
	recv.Stop()
	appendN(t, st, 20, "session.request")
	waitStatus(t, fwd, "the forwarder to notice", func(s auditfwd.Status) bool { return !s.Connected && s.Error != "" && s.Lag >= 20 })
	appendN(t, st, 5, "session.end")
	recv2 := startReceiver(t, addr, tlsCfg)
	waitSeq(t, recv2, 55)
	all := append(msgs, renumber(recv2.Messages(), 100)...)
	dups, err := syslogtest.CheckAudit(all, 1, 55)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d duplicates across the reconnect", dups)
	waitStatus(t, fwd, "the cursor to reach 55", func(s auditfwd.Status) bool { return s.Delivered == 55 && s.Connected })

	// A new forwarder (a relay restart) resumes after its cursor.
	fwd.Close()
	if seq, _ := st.AuditCursor(context.Background(), "tls://"+addr); seq != 55 {
		t.Fatalf("saved cursor %d, want 55", seq)
	}
	appendN(t, st, 3, "login")
	newForwarder(t, st, target)
	waitSeq(t, recv2, 58)
	later := recv2.Messages()
	if len(later) < 3 {
		t.Fatalf("after the restart: %d messages", len(later))
	}
	if seq, _ := later[len(later)-3].Seq(); seq != 56 || later[len(later)-3].Conn == later[len(later)-4].Conn {
		t.Errorf("the restarted forwarder began at record %d on connection %d; want 56 on a new connection", seq, later[len(later)-3].Conn)
	}
	if _, err := syslogtest.CheckAudit(append(msgs[:len(msgs):len(msgs)], renumber(later, 100)...), 1, 58); err != nil {
		t.Fatal(err)
	}
	if errs := recv.Errors(); len(errs)+len(recv2.Errors()) > 0 {
		t.Errorf("protocol errors: %v %v", errs, recv2.Errors())
	}
}

func TestForwardPlainTCPAndCatchUp(t *testing.T) {
	st := openStore(t)
	appendN(t, st, 1234, "job.create") // more than a batch: read and sent in pages
	recv := startReceiver(t, "127.0.0.1:0", nil)
	newForwarder(t, st, auditfwd.Target{URL: "tcp://" + recv.Addr()})
	waitSeq(t, recv, 1234)
	if dups, err := syslogtest.CheckAudit(recv.Messages(), 1, 1234); err != nil || dups != 0 {
		t.Fatalf("%d duplicates, %v", dups, err)
	}
}

func TestForwarderRefusesAReceiverItCannotVerify(t *testing.T) {
	st := openStore(t)
	appendN(t, st, 1, "login")
	tlsCfg, _ := receiverTLS(t, t.TempDir())
	_, otherCA := receiverTLS(t, t.TempDir())
	recv := startReceiver(t, "127.0.0.1:0", tlsCfg)
	f := newForwarder(t, st, auditfwd.Target{URL: "tls://" + recv.Addr(), CAFile: otherCA})
	s := waitStatus(t, f, "a refused handshake", func(s auditfwd.Status) bool { return s.Error != "" })
	if s.Connected || !strings.Contains(s.Error, "certificate") || s.Lag != 1 {
		t.Errorf("status %+v", s)
	}
	if len(recv.Messages()) != 0 {
		t.Error("a record went to an unverified receiver")
	}
}

func TestTargetErrors(t *testing.T) {
	st := openStore(t)
	for _, tc := range []struct {
		target auditfwd.Target
		says   string
	}{
		{auditfwd.Target{URL: "udp://h:514"}, "--syslog \"udp://h:514\": want tls://HOST:PORT"},
		{auditfwd.Target{URL: "tls://h"}, "want tls://HOST:PORT"},
		{auditfwd.Target{URL: "tcp://h:514", CAFile: "ca.pem"}, "need tls://"},
		{auditfwd.Target{URL: "tls://h:6514", CAFile: "/nonexistent/ca.pem"}, "--syslog-ca: open /nonexistent/ca.pem"},
		{auditfwd.Target{URL: "tls://h:6514", CertFile: "c.pem"}, "--syslog-cert and --syslog-key go together"},
	} {
		_, err := auditfwd.New(auditfwd.Config{Target: tc.target, Store: st})
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%+v: %v; want %q", tc.target, err, tc.says)
		}
	}
}
