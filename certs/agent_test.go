package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func csrFor(t testing.TB, key crypto.Signer, cn string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestSignAgentCSR(t *testing.T) {
	ca, _ := testCA(t)
	ecKey, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecCSR, err := CreateCSR(ecKey, "ignored-subject")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		csr  []byte
		pub  crypto.PublicKey
	}{
		{"ecdsa p256", ecCSR, &ecKey.PublicKey},
		{"ed25519", csrFor(t, edKey, "x"), edKey.Public()},
		{"rsa 2048", csrFor(t, rsaKey, "x"), &rsaKey.PublicKey},
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := uuid.NewString()
			start := time.Now()
			der, err := ca.SignAgentCSR(tt.csr, id, 90*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if cert.Subject.CommonName != id || cert.Subject.String() != "CN="+id {
				t.Errorf("subject = %q, want CN=%s", cert.Subject.String(), id)
			}
			if got, err := AgentID(cert); err != nil || got != id {
				t.Errorf("AgentID = %q, %v", got, err)
			}
			if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || cert.IsCA {
				t.Errorf("ExtKeyUsage = %v, IsCA = %v", cert.ExtKeyUsage, cert.IsCA)
			}
			if len(cert.DNSNames)+len(cert.IPAddresses) != 0 {
				t.Errorf("unexpected SANs %v %v", cert.DNSNames, cert.IPAddresses)
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %v", cert.SerialNumber)
			}
			if d := start.Add(-5 * time.Minute).Sub(cert.NotBefore); d < -2*time.Second || d > 2*time.Second {
				t.Errorf("NotBefore = %v, want about now-5m", cert.NotBefore)
			}
			if d := start.Add(90 * 24 * time.Hour).Sub(cert.NotAfter); d < -2*time.Second || d > 2*time.Second {
				t.Errorf("NotAfter = %v, want about now+90d", cert.NotAfter)
			}
			if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.pub) {
				t.Error("certificate key is not the CSR key")
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("does not verify as a client cert: %v", err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
				t.Error("agent cert verifies as a server cert")
			}
		})
	}

	// Validity is capped at the CA's expiry.
	der, err := ca.SignAgentCSR(ecCSR, uuid.NewString(), 100*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cert, _ := x509.ParseCertificate(der); !cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter %v not capped at CA expiry %v", cert.NotAfter, ca.Cert.NotAfter)
	}
}

func TestSignAgentCSRErrors(t *testing.T) {
	ca, _ := testCA(t)
	key, _ := NewKey()
	good, _ := CreateCSR(key, "aaaaaaaaaaaaaaaa")

	badSig := bytes.Clone(good)
	i := bytes.Index(badSig, []byte("aaaaaaaaaaaaaaaa"))
	badSig[i] = 'b'

	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	id := uuid.NewString()

	tests := []struct {
		name     string
		csr      []byte
		id       string
		validity time.Duration
		want     string
	}{
		{"empty", nil, id, time.Hour, "certificate request: empty"},
		{"garbage", []byte("definitely not a CSR"), id, time.Hour, "certificate request: not a DER PKCS#10 request"},
		{"pem instead of der", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: good}), id, time.Hour, "certificate request: not a DER"},
		{"truncated", good[:len(good)/2], id, time.Hour, "certificate request: not a DER"},
		{"oversized", make([]byte, MaxCSRSize+1), id, time.Hour, "certificate request: 16385 bytes"},
		{"bad signature", badSig, id, time.Hour, "certificate request: bad self-signature"},
		{"rsa 1024", csrFor(t, rsa1024, "x"), id, time.Hour, "certificate request: RSA key of 1024 bits is too weak"},
		{"ecdsa p384", csrFor(t, p384, "x"), id, time.Hour, "certificate request: ECDSA key on curve P-384 is not supported"},
		{"agent id not a uuid", good, "agent-1", time.Hour, "is not a UUID"},
		{"agent id upper case", good, strings.ToUpper(id), time.Hour, "not in canonical form"},
		{"agent id in braces", good, "{" + id + "}", time.Hour, "not in canonical form"},
		{"zero validity", good, id, 0, "validity 0s is not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := ca.SignAgentCSR(tt.csr, tt.id, tt.validity)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			if der != nil {
				t.Error("returned a certificate with an error")
			}
		})
	}
}

func FuzzSignAgentCSR(f *testing.F) {
	ca, err := newCA(time.Now())
	if err != nil {
		f.Fatal(err)
	}
	key, _ := NewKey()
	good, _ := CreateCSR(key, "seed")
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte{0x30, 0x82, 0xff, 0xff})
	f.Add([]byte{})
	id := uuid.NewString()
	f.Fuzz(func(t *testing.T, csr []byte) {
		der, err := ca.SignAgentCSR(csr, id, time.Hour)
		if err != nil {
			if der != nil {
				t.Fatal("certificate returned with an error")
			}
			return
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("issued an unparsable certificate: %v", err)
		}
		if cert.Subject.CommonName != id || cert.IsCA {
			t.Fatalf("issued subject %q IsCA=%v", cert.Subject.CommonName, cert.IsCA)
		}
	})
}

// TestClientCertHandshake presents agent certificates to a relay using ServerTLSConfig.
func TestClientCertHandshake(t *testing.T) {
	ca, dir := testCA(t)
	serverCert, err := LoadOrCreateServerCert(dir, ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := testCA(t)
	id := uuid.NewString()
	agentCert := func(t *testing.T, signer *CA) tls.Certificate {
		key, _ := NewKey()
		csr, _ := CreateCSR(key, "agent")
		der, err := signer.SignAgentCSR(csr, id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, _ := MarshalKeyPEM(key)
		pair, err := tls.X509KeyPair(CertPEM(der), keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	tests := []struct {
		name       string
		client     func(t *testing.T) []tls.Certificate
		wantErr    bool
		wantAgent  bool
		maxVersion uint16
	}{
		{"agent cert", func(t *testing.T) []tls.Certificate { return []tls.Certificate{agentCert(t, ca)} }, false, true, 0},
		{"agent cert tls1.2", func(t *testing.T) []tls.Certificate { return []tls.Certificate{agentCert(t, ca)} }, false, true, tls.VersionTLS12},
		{"no cert", func(*testing.T) []tls.Certificate { return nil }, false, false, 0},
		{"cert from another CA", func(t *testing.T) []tls.Certificate { return []tls.Certificate{agentCert(t, other)} }, true, false, 0},
		{"server cert as client cert", func(*testing.T) []tls.Certificate { return []tls.Certificate{serverCert} }, true, false, 0},
	}
	for _, tt := range tests {
		// "offered": the client offers its certificate only if the relay's
		// CertificateRequest names its CA (Go's default); "forced": it always sends it.
		for _, forced := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s forced=%v", tt.name, forced), func(t *testing.T) {
				clientCfg := PinnedClientConfig(ca.Fingerprint(), "localhost")
				certs := tt.client(t)
				if forced {
					clientCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
						if len(certs) == 0 {
							return &tls.Certificate{}, nil
						}
						return &certs[0], nil
					}
				} else {
					clientCfg.Certificates = certs
				}
				clientCfg.MaxVersion = tt.maxVersion
				state, serverErr, _ := handshake(t, ca.ServerTLSConfig(serverCert), clientCfg)
				if tt.wantErr {
					// Either the relay refuses the certificate, or (when the
					// client did not offer it) it sees no verified chain.
					if serverErr == nil && len(state.VerifiedChains) != 0 {
						t.Fatal("relay accepted the client certificate")
					}
					if forced && serverErr == nil {
						t.Fatal("relay accepted a certificate it cannot verify")
					}
					return
				}
				if serverErr != nil {
					t.Fatalf("relay handshake: %v", serverErr)
				}
				if !tt.wantAgent {
					if len(state.VerifiedChains) != 0 {
						t.Error("verified chains without a client cert")
					}
					return
				}
				if len(state.VerifiedChains) == 0 {
					t.Fatal("no verified chain")
				}
				if got, err := AgentID(state.VerifiedChains[0][0]); err != nil || got != id {
					t.Errorf("AgentID = %q, %v; want %s", got, err, id)
				}
			})
		}
	}
}

func TestAgentID(t *testing.T) {
	id := uuid.NewString()
	tests := []struct {
		name string
		cert *x509.Certificate
		ok   bool
	}{
		{"uuid", &x509.Certificate{Subject: pkix.Name{CommonName: id}}, true},
		{"nil", nil, false},
		{"empty", &x509.Certificate{}, false},
		{"name", &x509.Certificate{Subject: pkix.Name{CommonName: "laptop-7"}}, false},
		{"urn form", &x509.Certificate{Subject: pkix.Name{CommonName: "urn:uuid:" + id}}, false},
	}
	for _, tt := range tests {
		got, err := AgentID(tt.cert)
		if (err == nil) != tt.ok || (tt.ok && got != id) {
			t.Errorf("%s: AgentID = %q, %v", tt.name, got, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "agent id: ") {
			t.Errorf("%s: error %q lacks the step", tt.name, err)
		}
	}
}

func TestKeyPEM(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if key.Curve != elliptic.P256() {
		t.Errorf("curve %s", key.Curve.Params().Name)
	}
	p, err := MarshalKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(p, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Errorf("PEM type: %s", p[:30])
	}
	sec1DER, _ := x509.MarshalECPrivateKey(key)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	certPEM := CertPEM([]byte{1})

	tests := []struct {
		name string
		in   []byte
		want string // "" = parses to key
	}{
		{"pkcs8", p, ""},
		{"sec1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1DER}), ""},
		{"empty", nil, "parse key: no PEM block found"},
		{"ed25519", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER}), "is not an ECDSA key"},
		{"certificate", certPEM, `PEM block is "CERTIFICATE"`},
		{"bad der", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), "parse key: "},
	}
	for _, tt := range tests {
		got, err := ParseKeyPEM(tt.in)
		if tt.want == "" {
			if err != nil || !got.Equal(key) {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestCertPEM(t *testing.T) {
	ca, err := newCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := MarshalKeyPEM(ca.Key)
	tests := []struct {
		name string
		in   []byte
		want string // "" = parses to the CA cert
	}{
		{"single", CertPEM(ca.Cert.Raw), ""},
		{"after a key block", append(slices.Clone(keyPEM), CertPEM(ca.Cert.Raw)...), ""},
		{"first of two", append(CertPEM(ca.Cert.Raw), CertPEM([]byte{1})...), ""},
		{"no block", []byte("hello"), "parse certificate: no CERTIFICATE PEM block found"},
		{"only a key", keyPEM, "no CERTIFICATE PEM block found"},
		{"bad der", CertPEM([]byte{0x30, 0x00}), "parse certificate: "},
	}
	for _, tt := range tests {
		got, err := ParseCertPEM(tt.in)
		if tt.want == "" {
			if err != nil || !bytes.Equal(got.Raw, ca.Cert.Raw) {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want %q", tt.name, err, tt.want)
		}
	}
}
