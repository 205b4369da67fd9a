package receipt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
)

// Signed is a receipt as it travels and is kept: the canonical bytes, the
// agent's signature over them and the agent's certificate (DER), so that
// anyone holding the relay's CA certificate can check it without asking the
// relay. It is a JSON object of three base64 strings.
type Signed struct {
	Receipt   []byte `json:"receipt"`
	Signature []byte `json:"signature"`
	Cert      []byte `json:"cert"`
}

// CheckSize checks the lengths of s's parts (for wire validators, before
// any parsing).
func (s *Signed) CheckSize() error {
	switch {
	case len(s.Receipt) == 0 || len(s.Receipt) > MaxSize:
		return fmt.Errorf("receipt of %d bytes (want 1..%d)", len(s.Receipt), MaxSize)
	case len(s.Signature) == 0 || len(s.Signature) > MaxSignature:
		return fmt.Errorf("receipt signature of %d bytes (want 1..%d)", len(s.Signature), MaxSignature)
	case len(s.Cert) == 0 || len(s.Cert) > MaxCert:
		return fmt.Errorf("receipt certificate of %d bytes (want 1..%d)", len(s.Cert), MaxCert)
	}
	return nil
}

// Check verifies s as the relay and auditors do: the certificate chains to
// roots for client authentication at the receipt's time, its subject (the
// agent ID) is the receipt's AgentID, and the signature over the receipt
// verifies with the certificate's key. A non-empty agentID must also equal
// the receipt's AgentID (the relay passes the ID of the link it came on).
func (s *Signed) Check(roots *x509.CertPool, agentID string) (Receipt, error) {
	if err := s.CheckSize(); err != nil {
		return Receipt{}, fmt.Errorf("receipt: %w", err)
	}
	cert, err := x509.ParseCertificate(s.Cert)
	if err != nil {
		return Receipt{}, fmt.Errorf("receipt: certificate: %w", err)
	}
	r, err := Verify(cert.PublicKey, s.Receipt, s.Signature)
	if err != nil {
		return Receipt{}, err
	}
	if cert.Subject.CommonName != r.AgentID {
		return Receipt{}, fmt.Errorf("receipt: signed by the certificate of %q, not of agent %s", cert.Subject.CommonName, r.AgentID)
	}
	if agentID != "" && r.AgentID != agentID {
		return Receipt{}, fmt.Errorf("receipt: names agent %s, sent by agent %s", r.AgentID, agentID)
	}
	if roots == nil {
		return Receipt{}, errors.New("receipt: no CA to check the agent's certificate against")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: r.Time,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return Receipt{}, fmt.Errorf("receipt: agent certificate: %w", err)
	}
	return r, nil
}

// Signer signs receipts with an agent's key and attaches its certificate.
type Signer struct {
	key  crypto.Signer
	cert []byte
	err  error
}

// NewSigner returns a signer for an agent's TLS client certificate (its
// PrivateKey must be a crypto.Signer; Certificate[0] is the leaf). A
// certificate that cannot sign makes every Sign fail with the reason.
func NewSigner(cert tls.Certificate) *Signer {
	key, ok := cert.PrivateKey.(crypto.Signer)
	switch {
	case !ok:
		return &Signer{err: fmt.Errorf("receipt: the agent's key (%T) cannot sign", cert.PrivateKey)}
	case len(cert.Certificate) == 0:
		return &Signer{err: errors.New("receipt: the agent has no certificate")}
	}
	return &Signer{key: key, cert: cert.Certificate[0]}
}

// Sign signs r.
func (s *Signer) Sign(r Receipt) (Signed, error) {
	if s == nil {
		return Signed{}, errors.New("receipt: no signer")
	}
	if s.err != nil {
		return Signed{}, s.err
	}
	data, sig, err := Sign(s.key, r)
	if err != nil {
		return Signed{}, err
	}
	return Signed{Receipt: data, Signature: sig, Cert: s.cert}, nil
}

// Audit detail keys under which a signed receipt is kept in an audit record.
// The receipt is stored as its canonical JSON text (readable in `patchbay
// audit list`), the signature and certificate in standard base64.
const (
	DetailReceipt   = "receipt"
	DetailSignature = "receipt_sig"
	DetailCert      = "receipt_cert"
)

// AddToDetail puts s into an audit record's detail (which must not be nil).
func AddToDetail(detail map[string]string, s Signed) {
	detail[DetailReceipt] = string(s.Receipt)
	detail[DetailSignature] = base64.StdEncoding.EncodeToString(s.Signature)
	detail[DetailCert] = base64.StdEncoding.EncodeToString(s.Cert)
}

// FromDetail takes a signed receipt out of an audit record's detail. ok is
// false when the record carries none of its keys; a record that carries
// some but not all, or bad base64, is an error.
func FromDetail(detail map[string]string) (s Signed, ok bool, err error) {
	rec, hasR := detail[DetailReceipt]
	sig, hasS := detail[DetailSignature]
	cert, hasC := detail[DetailCert]
	if !hasR && !hasS && !hasC {
		return Signed{}, false, nil
	}
	if !hasR || !hasS || !hasC {
		return Signed{}, true, fmt.Errorf("receipt: the record carries only part of a receipt (%s, %s and %s are needed)",
			DetailReceipt, DetailSignature, DetailCert)
	}
	s.Receipt = []byte(rec)
	if s.Signature, err = base64.StdEncoding.DecodeString(sig); err != nil {
		return Signed{}, true, fmt.Errorf("receipt: signature: %w", err)
	}
	if s.Cert, err = base64.StdEncoding.DecodeString(cert); err != nil {
		return Signed{}, true, fmt.Errorf("receipt: certificate: %w", err)
	}
	return s, true, nil
}

// CertBook keeps the certificate each agent signs with: the relay's store.
type CertBook interface {
	AgentCert(ctx context.Context, id string) ([]byte, error)
	SetAgentCert(ctx context.Context, id string, der []byte) (bool, error)
}

// CheckFrom verifies s as the relay receives it from agentID's link: Check
// against roots, and the certificate must be the one on record for the
// agent (the first one seen is recorded for agents enrolled before
// certificates were kept).
func (s *Signed) CheckFrom(ctx context.Context, roots *x509.CertPool, book CertBook, agentID string) (Receipt, error) {
	r, err := s.Check(roots, agentID)
	if err != nil {
		return Receipt{}, err
	}
	stored, err := book.AgentCert(ctx, agentID)
	if err != nil {
		return Receipt{}, err
	}
	if stored == nil {
		if _, err := book.SetAgentCert(ctx, agentID, s.Cert); err != nil {
			return Receipt{}, err
		}
	} else if !bytes.Equal(stored, s.Cert) {
		return Receipt{}, errors.New("receipt: signed with a certificate other than the one on record for this agent")
	}
	return r, nil
}
