package certs

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// MaxCSRSize bounds the certificate request SignAgentCSR will parse.
const MaxCSRSize = 16 << 10

// RSA key sizes accepted in agent CSRs. The upper bound keeps signature
// verification of untrusted requests cheap.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// SignAgentCSR verifies the CSR's self-signature and issues a client certificate
// for the agent. The public key must be ECDSA P-256, Ed25519 or RSA of 2048 to
// 8192 bits; anything else is refused with a clear error. The certificate has
// Subject CommonName = agentID (which must be a UUID in canonical lower-case
// form; the CSR's subject and extensions are ignored), ExtKeyUsageClientAuth only,
// a random 128-bit serial, NotBefore now-5m and NotAfter now+validity (capped at
// the CA's own expiry). Errors about the request start with
// "certificate request: "; untrusted bytes never cause a panic.
func (ca *CA) SignAgentCSR(csrDER []byte, agentID string, validity time.Duration) (certDER []byte, err error) {
	if err := checkAgentID(agentID); err != nil {
		return nil, fmt.Errorf("sign agent certificate: %w", err)
	}
	if validity <= 0 {
		return nil, fmt.Errorf("sign agent certificate: validity %v is not positive", validity)
	}
	if len(csrDER) == 0 {
		return nil, errors.New("certificate request: empty")
	}
	if len(csrDER) > MaxCSRSize {
		return nil, fmt.Errorf("certificate request: %d bytes, larger than the %d byte limit", len(csrDER), MaxCSRSize)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("certificate request: not a DER PKCS#10 request: %w", err)
	}
	if err := checkAgentKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request: bad self-signature: %w", err)
	}

	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("sign agent certificate: %w", err)
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: agentID},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign agent certificate: %w", err)
	}
	return der, nil
}

// checkAgentKey accepts ECDSA P-256, Ed25519 and RSA 2048..8192 public keys.
func checkAgentKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("ECDSA key on curve %s is not supported; use P-256 or Ed25519", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits < minRSABits {
			return fmt.Errorf("RSA key of %d bits is too weak; need at least %d bits (ECDSA P-256 or Ed25519 preferred)", bits, minRSABits)
		}
		if bits > maxRSABits {
			return fmt.Errorf("RSA key of %d bits is larger than the %d bit limit; use ECDSA P-256 or Ed25519", bits, maxRSABits)
		}
	default:
		return fmt.Errorf("public key type %T is not supported; use ECDSA P-256 or Ed25519", pub)
	}
	return nil
}

// checkAgentID requires a UUID in its canonical lower-case string form, so one
// agent has exactly one possible certificate subject.
func checkAgentID(id string) error {
	u, err := uuid.Parse(id)
	if err != nil {
		return fmt.Errorf("agent id %s is not a UUID: %w", quoteShort(id), err)
	}
	if u.String() != id {
		return fmt.Errorf("agent id %s is not in canonical form %s", quoteShort(id), u.String())
	}
	return nil
}

// AgentID returns the agent UUID from a verified client certificate
// (Subject.CommonName), which must be a UUID in canonical lower-case form.
// It does not verify the certificate: the caller must have done so.
func AgentID(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", errors.New("agent id: no certificate")
	}
	if err := checkAgentID(cert.Subject.CommonName); err != nil {
		return "", fmt.Errorf("agent id: certificate subject: %w", err)
	}
	return cert.Subject.CommonName, nil
}

// CreateCSR returns a DER certificate request for key with the given subject
// common name. The CA ignores the subject; it is informational.
func CreateCSR(key *ecdsa.PrivateKey, commonName string) (csrDER []byte, err error) {
	tmpl := &x509.CertificateRequest{
		Subject:            pkix.Name{CommonName: commonName},
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return der, nil
}

// MarshalKeyPEM encodes key as a PKCS#8 "PRIVATE KEY" PEM block.
func MarshalKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPEM parses the first PEM block of pemBytes as an ECDSA private key,
// either PKCS#8 ("PRIVATE KEY", as MarshalKeyPEM writes) or SEC 1
// ("EC PRIVATE KEY", as openssl ecparam writes).
func ParseKeyPEM(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("parse key: no PEM block found")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse key: %w", err)
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("parse key: %T is not an ECDSA key", k)
		}
		return ec, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse key: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("parse key: PEM block is %q, want \"PRIVATE KEY\"", block.Type)
	}
}

// CertPEM encodes a DER certificate as a "CERTIFICATE" PEM block.
func CertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// ParseCertPEM parses the first "CERTIFICATE" PEM block in pemBytes, skipping
// blocks of other types.
func ParseCertPEM(pemBytes []byte) (*x509.Certificate, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("parse certificate: no CERTIFICATE PEM block found")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		return cert, nil
	}
}
