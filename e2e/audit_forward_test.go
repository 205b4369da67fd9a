package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/server/auditfwd/syslogtest"
)

// TestAuditForwarding runs a relay with --syslog into the test's own strict
// syslog receiver over TLS: records made through the CLI arrive; through a
// receiver outage and a relay restart every record arrives, in order, a
// duplicate only across a reconnect.
func TestAuditForwarding(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	certDir := t.TempDir()
	ca, err := certs.LoadOrCreateCA(certDir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certs.LoadOrCreateServerCert(certDir, ca, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	startRecv := func(addr string) *syslogtest.Receiver {
		t.Helper()
		r, err := syslogtest.Start(addr, tlsCfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
		return r
	}
	recv := startRecv("127.0.0.1:0")
	addr := recv.Addr()
	relay := StartRelayArgs(t, "--syslog", "tls://"+addr, "--syslog-ca", filepath.Join(certDir, certs.CACertFile))
	admin := relay.Login(relay.AdminToken())

	head := func() int64 {
		t.Helper()
		var recs []audit.Record
		if err := json.Unmarshal([]byte(admin.Run("audit", "list", "--limit", "1", "-o", "json")), &recs); err != nil || len(recs) != 1 {
			t.Fatalf("audit head: %v %v", err, recs)
		}
		return recs[0].Seq
	}
	wait := func(r *syslogtest.Receiver, seq int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := r.Wait(ctx, func(m []syslogtest.Received) bool { return syslogtest.Highest(m) >= seq }); err != nil {
			t.Fatalf("waiting for record %d at the receiver (has up to %d): %v", seq, syslogtest.Highest(r.Messages()), err)
		}
	}
	renumber := func(msgs []syslogtest.Received, by int) []syslogtest.Received {
		for i := range msgs {
			msgs[i].Conn += by
		}
		return msgs
	}

	for range 3 {
		admin.Token("--uses", "1")
	}
	n1 := head()
	wait(recv, n1)
	msgs := recv.Messages()
	if _, err := syslogtest.CheckAudit(msgs, 1, n1); err != nil {
		t.Fatal(err)
	}
	var tokenMsgs int
	for _, m := range msgs {
		if m.Msg.MsgID == "enroll-token.create" && m.Msg.AppName == "patchbay" {
			tokenMsgs++
		}
	}
	if tokenMsgs != 3 {
		t.Errorf("%d enroll-token.create messages, want 3", tokenMsgs)
	}

	// The receiver goes down; people go on working; it comes back on the
	// same port.
	recv.Stop()
	for range 4 {
		admin.Token("--uses", "1")
	}
	admin.Run("audit", "verify")
	n2 := head()
	recv2 := startRecv(addr)
	wait(recv2, n2)
	all := append(msgs[:len(msgs):len(msgs)], renumber(recv2.Messages(), 100)...)
	dups, err := syslogtest.CheckAudit(all, 1, n2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("records 1..%d arrived, %d duplicates across the reconnect", n2, dups)

	// The relay restarts: it resumes from its cursor, not from record 1.
	waitFor(t, 20*time.Second, "the forwarder to report no lag", func() bool {
		h := fwdHealth(t, relay)
		return h.AuditForward != nil && h.AuditForward.Lag == 0 && h.AuditForward.Delivered == n2
	})
	before := len(recv2.Messages())
	relay.proc.stop(t)
	relay.Start()
	admin.Token("--uses", "1")
	n3 := head()
	wait(recv2, n3)
	later := recv2.Messages()
	if seq, _ := later[before].Seq(); seq != n2+1 || later[before].Conn == later[before-1].Conn {
		t.Errorf("after the restart the relay sent record %d first (connection %d); want %d on a new connection", seq, later[before].Conn, n2+1)
	}
	if _, err := syslogtest.CheckAudit(append(msgs[:len(msgs):len(msgs)], renumber(later, 100)...), 1, n3); err != nil {
		t.Fatal(err)
	}
	if errs := append(recv.Errors(), recv2.Errors()...); len(errs) > 0 {
		t.Errorf("the strict receiver refused messages: %v", errs)
	}

	// The same records through the CLI's filters and export.
	out := admin.Run("audit", "export", "--action", "enroll-token.create", "-o", "jsonl")
	if lines := strings.Count(out, "\n"); lines != 8 {
		t.Errorf("export of enroll-token.create: %d lines, want 8:\n%s", lines, out)
	}
	out = admin.Run("audit", "list", "--action", "enroll-token.*", "--since", "1h", "--limit", "2", "-o", "json")
	var recs []audit.Record
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 2 || recs[1].Seq != n3 {
		t.Errorf("filtered list: %v %s", err, out)
	}
}

type fwdHealthz struct {
	Status       string `json:"status"`
	AuditForward *struct {
		Connected bool  `json:"connected"`
		Delivered int64 `json:"delivered_seq"`
		Lag       int64 `json:"lag"`
	} `json:"audit_forward"`
}

func fwdHealth(t *testing.T, r *Relay) fwdHealthz {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(r.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h fwdHealthz
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h
}
