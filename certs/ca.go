// Package certs is Patchbay's PKI: the relay's certificate authority, the relay's
// TLS server certificate, agent client certificates issued from CSRs, and the TLS
// configurations that use them (including CA pinning by fingerprint for clients
// that do not have the CA certificate yet). See README.md for the files and policy.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/atomicfile"
)

// File names inside the data directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

// Validity periods.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ServerValidity = 365 * 24 * time.Hour
	// ServerRenewBefore is how close to expiry a server certificate is reissued.
	ServerRenewBefore = 30 * 24 * time.Hour
	// clockSkew back-dates NotBefore so a peer with a slow clock accepts a fresh certificate.
	clockSkew = 5 * time.Minute
)

// CA is the relay's certificate authority for agent client certs and the server cert.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
}

// LoadOrCreateCA loads dir/ca.crt and dir/ca.key, or creates them (10-year
// validity, subject CN "Patchbay CA <short random>", IsCA,
// KeyUsageCertSign|CRLSign, MaxPathLen 0). The directory is created with mode
// 0700 if missing. If exactly one of the two files exists it returns an error
// naming the missing one and writes nothing: a CA key is never overwritten.
func LoadOrCreateCA(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	certOK, err := exists(certPath)
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	switch {
	case certOK && keyOK:
		return loadCA(certPath, keyPath)
	case certOK:
		return nil, fmt.Errorf("load ca: %s is missing but %s exists; restore the key from backup, or remove %s to create a new CA (every agent must then re-enroll)", keyPath, certPath, certPath)
	case keyOK:
		return nil, fmt.Errorf("load ca: %s is missing but %s exists; restore the certificate from backup, or remove %s to create a new CA (every agent must then re-enroll)", certPath, keyPath, keyPath)
	}

	ca, err := newCA(time.Now())
	if err != nil {
		return nil, fmt.Errorf("create ca: %w", err)
	}
	keyPEM, err := MarshalKeyPEM(ca.Key)
	if err != nil {
		return nil, fmt.Errorf("create ca: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create ca: %w", err)
	}
	if err := atomicfile.WriteSecret(keyPath, keyPEM); err != nil {
		return nil, fmt.Errorf("create ca: %w", err)
	}
	if err := atomicfile.Write(certPath, ca.CertPEM, 0o644); err != nil {
		// Nothing has been signed with this fresh key yet: removing it lets the next start begin cleanly.
		_ = os.Remove(keyPath)
		return nil, fmt.Errorf("create ca: %w", err)
	}
	return ca, nil
}

// newCA generates a CA key and self-signed certificate in memory.
func newCA(now time.Time) (*CA, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, fmt.Errorf("random name: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Patchbay CA " + hex.EncodeToString(suffix[:])},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sign ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse ca certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: CertPEM(der)}, nil
}

func loadCA(certPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("load ca: %s: %w", certPath, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load ca: %s: %w", keyPath, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("load ca: %s does not belong to %s", keyPath, certPath)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("load ca: %s is not a CA certificate", certPath)
	}
	if now := time.Now(); now.After(cert.NotAfter) {
		return nil, fmt.Errorf("load ca: %s expired on %s; create a new CA and re-enroll every agent", certPath, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return &CA{Cert: cert, Key: key, CertPEM: CertPEM(cert.Raw)}, nil
}

// exists reports whether path exists; errors other than "not found" are returned.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// randomSerial returns a random, positive, non-zero 128-bit serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("random serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// Fingerprint returns "sha256:" + lower-case hex SHA-256 of cert.Raw (the DER).
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Fingerprint returns the fingerprint of the CA certificate, the value agents and
// technicians pass as --ca-fingerprint.
func (ca *CA) Fingerprint() string {
	return Fingerprint(ca.Cert)
}

// fingerprintForm describes the accepted input, for error messages.
const fingerprintForm = `"sha256:" followed by 64 hex digits, optionally with colons between byte pairs (as printed by patchbay-server)`

// ParseFingerprint normalises user input: it accepts "sha256:HEX" with the prefix
// in any case, the hex digits in any case and optionally colons between every
// hex byte pair (e.g. "SHA256:AB:CD:..."), and surrounding white space. It
// returns the canonical "sha256:<64 lower hex>" or an error saying what form is
// expected.
func ParseFingerprint(s string) (string, error) {
	const prefix = "sha256:"
	in := strings.TrimSpace(s)
	if len(in) < len(prefix) || !strings.EqualFold(in[:len(prefix)], prefix) {
		return "", fmt.Errorf("parse fingerprint %s: missing the sha256: prefix; expected %s", quoteShort(s), fingerprintForm)
	}
	digits := in[len(prefix):]
	if strings.Contains(digits, ":") {
		parts := strings.Split(digits, ":")
		for _, p := range parts {
			if len(p) != 2 {
				return "", fmt.Errorf("parse fingerprint %s: colons must separate pairs of hex digits; expected %s", quoteShort(s), fingerprintForm)
			}
		}
		digits = strings.Join(parts, "")
	}
	for _, c := range digits {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return "", fmt.Errorf("parse fingerprint %s: not hexadecimal; expected %s", quoteShort(s), fingerprintForm)
		}
	}
	if len(digits) != 2*sha256.Size {
		return "", fmt.Errorf("parse fingerprint %s: got %d hex digits, want 64; expected %s", quoteShort(s), len(digits), fingerprintForm)
	}
	raw, err := hex.DecodeString(digits)
	if err != nil {
		return "", fmt.Errorf("parse fingerprint %s: %w", quoteShort(s), err)
	}
	return prefix + hex.EncodeToString(raw), nil
}

// quoteShort quotes untrusted input for an error message, cut to a readable length.
func quoteShort(s string) string {
	const max = 120
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// NewKey generates an ECDSA P-256 private key.
func NewKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}
