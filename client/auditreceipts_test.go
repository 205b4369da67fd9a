package client_test

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/client/clienttest"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/internal/receipt"
)

const (
	rcAgent   = "0193a1b2-0000-7000-8000-00000000a001"
	rcSession = "0193a1b2-0000-7000-8000-00000000b001"
	rcRun     = "0193a1b2-0000-7000-8000-00000000c001"
)

// agentSigner enrolls a key with ca, as the relay does, and returns its signer.
func agentSigner(t *testing.T, ca *certs.CA, id string) *receipt.Signer {
	t.Helper()
	key, err := certs.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := certs.CreateCSR(key, id)
	der, err := ca.SignAgentCSR(csr, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return receipt.NewSigner(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key})
}

func signedDetail(t *testing.T, s *receipt.Signer, r receipt.Receipt, detail map[string]string) map[string]string {
	t.Helper()
	signed, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	receipt.AddToDetail(detail, signed)
	return detail
}

func TestVerifyAuditChecksConsentReceipts(t *testing.T) {
	now := time.Now().UTC()
	approval := receipt.Receipt{Kind: receipt.KindSession, ID: rcSession, AgentID: rcAgent, Technician: "alice",
		Capabilities: []string{"shell"}, Decision: receipt.Approved, By: "bob", Time: now}
	actor := "agent " + rcAgent + " (bob)"

	// good appends a valid approval, a valid fix receipt under an action
	// this package does not know, and a plain record.
	good := func(relay *clienttest.Relay, s *receipt.Signer) {
		relay.AppendAudit(t, now, actor, "session.approved", rcSession, signedDetail(t, s, approval, map[string]string{"capabilities": "[shell]"}))
		fix := receipt.Receipt{Kind: receipt.KindFix, ID: rcRun, AgentID: rcAgent, Fix: "script x 1.0", Decision: receipt.Denied, By: "timeout", Time: now}
		relay.AppendAudit(t, now, actor, "run.consent", rcRun, signedDetail(t, s, fix, map[string]string{}))
		relay.AppendAudit(t, now, "token:x (admin)", "token.create", "t", nil)
	}
	for _, tt := range []struct {
		name string
		bad  func(relay *clienttest.Relay, s *receipt.Signer)
		want string // "" = verifies
	}{
		{"valid", func(*clienttest.Relay, *receipt.Signer) {}, ""},
		{"approval without receipt", func(relay *clienttest.Relay, _ *receipt.Signer) {
			relay.AppendAudit(t, now, actor, "session.approved", rcSession, map[string]string{"by": "bob"})
		}, "session.approved record without a receipt"},
		{"denial without receipt", func(relay *clienttest.Relay, _ *receipt.Signer) {
			relay.AppendAudit(t, now, actor, "session.denied", rcSession, nil)
		}, "without a receipt"},
		{"receipt copied to another session", func(relay *clienttest.Relay, s *receipt.Signer) {
			r := approval
			r.ID = "0193a1b2-0000-7000-8000-00000000b002"
			relay.AppendAudit(t, now, actor, "session.approved", rcSession, signedDetail(t, s, r, map[string]string{"capabilities": "[shell]"}))
		}, "the receipt is for session"},
		{"denial presented as approval", func(relay *clienttest.Relay, s *receipt.Signer) {
			r := approval
			r.ID, r.Decision = "0193a1b2-0000-7000-8000-00000000b003", receipt.Denied
			relay.AppendAudit(t, now, actor, "session.approved", r.ID, signedDetail(t, s, r, map[string]string{}))
		}, "the receipt says denied"},
		{"same receipt twice", func(relay *clienttest.Relay, _ *receipt.Signer) {
			relay.AppendAudit(t, now, actor, "session.approved", rcSession, relay.Record(t, 3).Detail)
		}, "already backs record 3"},
		{"capabilities widened", func(relay *clienttest.Relay, s *receipt.Signer) {
			r := approval
			r.ID = "0193a1b2-0000-7000-8000-00000000b004"
			relay.AppendAudit(t, now, actor, "session.approved", r.ID, signedDetail(t, s, r, map[string]string{"capabilities": "[shell sftp]"}))
		}, "the receipt approves"},
		{"edited receipt (any action)", func(relay *clienttest.Relay, s *receipt.Signer) {
			fix := receipt.Receipt{Kind: receipt.KindFix, ID: rcRun, AgentID: rcAgent, Fix: "script y", Decision: receipt.Denied, By: "jane", Time: now}
			d := signedDetail(t, s, fix, map[string]string{})
			d[receipt.DetailReceipt] = strings.Replace(d[receipt.DetailReceipt], "denied", "approved", 1)
			relay.AppendAudit(t, now, actor, "run.consent", rcRun, d)
		}, "bad signature"},
		{"key from another CA", func(relay *clienttest.Relay, _ *receipt.Signer) {
			other, err := certs.LoadOrCreateCA(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			r := approval
			r.ID = "0193a1b2-0000-7000-8000-00000000b005"
			relay.AppendAudit(t, now, actor, "session.approved", r.ID, signedDetail(t, agentSigner(t, other, rcAgent), r, map[string]string{"capabilities": "[shell]"}))
		}, "certificate signed by unknown authority"},
		{"partial receipt", func(relay *clienttest.Relay, _ *receipt.Signer) {
			relay.AppendAudit(t, now, actor, "session.end", rcSession, map[string]string{receipt.DetailReceipt: "{}"})
		}, "only part of a receipt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			relay := clienttest.New(t)
			s := agentSigner(t, relay.CA, rcAgent)
			good(relay, s)
			tt.bad(relay, s)
			c, err := client.New(relay.Viewer())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.VerifyAudit(ctx(t), nil)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *audit.ChainError
			// Records 1 and 2 created the relay's tokens, 3 to 5 are good's.
			if !errors.As(err, &ce) || ce.Seq != 6 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a broken chain at record 6 with %q", err, tt.want)
			}
			t.Log(err)
		})
	}
}

// A log begun before relays kept receipts verifies with UnsignedBefore, up
// to the given record only.
func TestVerifyAuditUnsignedBefore(t *testing.T) {
	relay := clienttest.New(t)
	now := time.Now()
	actor := "agent " + rcAgent + " (bob)"
	relay.AppendAudit(t, now, actor, "session.approved", rcSession, map[string]string{"capabilities": "[shell]"})
	relay.AppendAudit(t, now, actor, "session.denied", rcSession, nil)
	c, err := client.New(relay.Viewer())
	if err != nil {
		t.Fatal(err)
	}
	// Records 1 and 2 created the relay's tokens; 3 and 4 are unsigned.
	if _, err := c.VerifyAudit(ctx(t), nil, client.UnsignedBefore(5)); err != nil {
		t.Fatalf("legacy records before 5: %v", err)
	}
	var ce *audit.ChainError
	if _, err := c.VerifyAudit(ctx(t), nil, client.UnsignedBefore(4)); !errors.As(err, &ce) || ce.Seq != 4 {
		t.Fatalf("legacy records before 4 only: %v", err)
	}
}
