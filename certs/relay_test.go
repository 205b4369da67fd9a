package certs

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/google/uuid"
)

// A relay's client certificate verifies against the CA for client auth, is
// recognised as a relay's and can never name an agent; an agent's
// certificate is never a relay's, whatever its request asked for.
func TestRelayClientCert(t *testing.T) {
	ca, _ := testCA(t)
	rc, err := ca.IssueRelayClientCert("host-1a2b3c4d")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := rc.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("relay client certificate does not verify for client auth: %v", err)
	}
	if !IsRelayCert(rc.Leaf) {
		t.Fatal("IsRelayCert refuses a relay's certificate")
	}
	if id, err := AgentID(rc.Leaf); err == nil {
		t.Fatalf("a relay's certificate names agent %s", id)
	}
	if d := time.Until(rc.Leaf.NotAfter); d > RelayClientValidity || d < RelayClientValidity-time.Hour {
		t.Fatalf("relay client certificate valid for %v, want %v", d, RelayClientValidity)
	}
	if _, err := ca.IssueRelayClientCert(""); err == nil {
		t.Fatal("a relay certificate without a node ID was issued")
	}

	key, _ := NewKey()
	der, err := ca.SignAgentCSR(csrFor(t, key, "relay x"), uuid.NewString(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	agent, _ := x509.ParseCertificate(der)
	if IsRelayCert(agent) {
		t.Fatal("an agent's certificate passes as a relay's")
	}
	if IsRelayCert(nil) {
		t.Fatal("no certificate passes as a relay's")
	}
}
