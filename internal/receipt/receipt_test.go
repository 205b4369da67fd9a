package receipt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/certs"
)

const (
	agentID   = "0193a1b2-0000-7000-8000-000000000001"
	sessionID = "0193a1b2-0000-7000-8000-0000000000aa"
	jobID     = "0193a1b2-0000-7000-8000-0000000000bb"
)

func sample() Receipt {
	return Receipt{Kind: KindSession, ID: sessionID, AgentID: agentID, Technician: "alice", Reason: "INC-42 <printer> & \"co\"",
		Capabilities: []string{"shell", "sftp"}, Decision: Approved, By: "bob", Message: "ok",
		Time: time.Date(2026, 12, 6, 10, 11, 12, 123456789, time.FixedZone("x", 3600))}
}

// agent returns a CA pool and an agent certificate signed by a fresh CA.
func agent(t testing.TB, id string) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	ca, err := certs.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, err := certs.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := certs.CreateCSR(key, "x")
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

func TestEncodeDecodeCanonical(t *testing.T) {
	r := sample()
	b, err := Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"v":"patchbay-receipt-v1","kind":"session",`)) || !bytes.Contains(b, []byte(`"time":"2026-12-06T09:11:12.123456Z"`)) {
		t.Fatalf("encoding %s", b)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(r.Time.Truncate(time.Microsecond)) || got.Reason != r.Reason || len(got.Capabilities) != 2 {
		t.Fatalf("decoded %+v", got)
	}
	for name, bad := range map[string]string{
		"whitespace":    strings.Replace(string(b), `"kind":`, `"kind": `, 1),
		"unknown field": strings.Replace(string(b), `{"v":`, `{"x":1,"v":`, 1),
		"order":         strings.Replace(string(b), `"v":"patchbay-receipt-v1","kind":"session"`, `"kind":"session","v":"patchbay-receipt-v1"`, 1),
		"zone":          strings.Replace(string(b), `09:11:12.123456Z`, `10:11:12.123456+01:00`, 1),
		"version":       strings.Replace(string(b), `receipt-v1`, `receipt-v2`, 1),
		"decision":      strings.Replace(string(b), `"approved"`, `"maybe"`, 1),
		"trailing":      string(b) + "{}",
		"escape":        strings.Replace(string(b), `"ok"`, `"o\u006b"`, 1),
		"control":       strings.Replace(string(b), `"ok"`, `"o\u001bk"`, 1),
	} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("%s: decoded %s", name, bad)
		}
	}
}

func TestValidate(t *testing.T) {
	for name, f := range map[string]func(*Receipt){
		"kind":        func(r *Receipt) { r.Kind = "reboot" },
		"session job": func(r *Receipt) { r.JobID = jobID },
		"fix no name": func(r *Receipt) { r.Kind = KindFix },
		"id":          func(r *Receipt) { r.ID = "x" },
		"agent":       func(r *Receipt) { r.AgentID = strings.ToUpper(agentID) },
		"no by":       func(r *Receipt) { r.By = "" },
		"no time":     func(r *Receipt) { r.Time = time.Time{} },
		"long reason": func(r *Receipt) { r.Reason = strings.Repeat("x", 501) },
		"newline":     func(r *Receipt) { r.Message = "a\nb" },
		"caps":        func(r *Receipt) { r.Capabilities = make([]string, 17) },
	} {
		r := sample()
		f(&r)
		if _, err := Encode(r); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	r := sample()
	r.Kind, r.JobID, r.Fix, r.Capabilities, r.Technician = KindFix, jobID, "script clear-cache 1.2", nil, ""
	if _, err := Encode(r); err != nil {
		t.Errorf("fix receipt: %v", err)
	}
}

func TestSignCheck(t *testing.T) {
	pool, cert := agent(t, agentID)
	s := NewSigner(cert)
	r := sample()
	r.Time = time.Now()
	signed, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := signed.Check(pool, agentID)
	if err != nil || got.ID != sessionID {
		t.Fatalf("check: %+v, %v", got, err)
	}

	// Through an audit detail and back.
	d := map[string]string{"technician": "alice"}
	AddToDetail(d, signed)
	back, ok, err := FromDetail(d)
	if !ok || err != nil {
		t.Fatalf("from detail: %v %v", ok, err)
	}
	if _, err := back.Check(pool, ""); err != nil {
		t.Fatalf("check from detail: %v", err)
	}
	if _, ok, _ := FromDetail(map[string]string{"x": "y"}); ok {
		t.Error("a record without a receipt carries one")
	}
	delete(d, DetailCert)
	if _, _, err := FromDetail(d); err == nil {
		t.Error("a partial receipt passed")
	}

	// Tampered receipt, signature, another agent, another CA.
	forged := signed
	forged.Receipt = bytes.Replace(signed.Receipt, []byte(`"approved"`), []byte(`"denied"`), 1)
	if _, err := forged.Check(pool, agentID); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Errorf("tampered receipt: %v", err)
	}
	forged = signed
	forged.Signature = append([]byte(nil), signed.Signature...)
	forged.Signature[len(forged.Signature)-1] ^= 1
	if _, err := forged.Check(pool, agentID); err == nil {
		t.Error("tampered signature verified")
	}
	if _, err := signed.Check(pool, "0193a1b2-0000-7000-8000-000000000002"); err == nil {
		t.Error("a receipt from another agent's link verified")
	}
	otherPool, otherCert := agent(t, agentID)
	if _, err := signed.Check(otherPool, agentID); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("foreign CA: %v", err)
	}
	// A key certified for another agent signing this agent's receipt.
	_, impostor := agent(t, "0193a1b2-0000-7000-8000-000000000003")
	bad, err := NewSigner(impostor).Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Check(pool, ""); err == nil || !strings.Contains(err.Error(), "not of agent") {
		t.Errorf("impostor: %v", err)
	}
	// The right certificate with another key's signature.
	bad, _ = NewSigner(otherCert).Sign(r)
	bad.Cert = signed.Cert
	if _, err := bad.Check(pool, agentID); err == nil {
		t.Error("a signature by another key verified")
	}
	if _, err := NewSigner(tls.Certificate{PrivateKey: "nope"}).Sign(r); err == nil {
		t.Error("signer without a key signed")
	}
}

func TestEd25519(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	data, sig, err := Sign(priv, sample())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(pub, data, sig); err != nil {
		t.Fatal(err)
	}
	sig[0] ^= 1
	if _, err := Verify(pub, data, sig); err == nil {
		t.Fatal("bad signature verified")
	}
}

// FuzzDecode: the relay and auditors decode receipts an agent (or a
// database) supplied. Nothing may panic; a receipt that decodes re-encodes
// to the same bytes, and checking a signed receipt never panics.
func FuzzDecode(f *testing.F) {
	b, _ := Encode(sample())
	f.Add(b, []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	r := sample()
	r.Kind, r.JobID, r.Fix, r.Decision = KindFix, jobID, "script x", Denied
	b, _ = Encode(r)
	f.Add(b, []byte{1})
	f.Add([]byte(`{"v":"patchbay-receipt-v1"}`), []byte{})
	f.Fuzz(func(t *testing.T, data, sig []byte) {
		r, err := Decode(data)
		if err == nil {
			again, err := Encode(r)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("decoded %q but re-encodes to %q (%v)", data, again, err)
			}
		}
		s := Signed{Receipt: data, Signature: sig, Cert: sig}
		_, _ = s.Check(x509.NewCertPool(), "")
		d := map[string]string{DetailReceipt: string(data), DetailSignature: string(sig), DetailCert: string(sig)}
		_, _, _ = FromDetail(d)
	})
}
