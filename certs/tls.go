package certs

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/atomicfile"
)

// LoadOrCreateServerCert loads dir/server.crt and dir/server.key if they are
// present, belong together, are signed by ca, are not expiring within 30 days
// and cover every host; otherwise it issues a new certificate (ECDSA P-256,
// 1-year validity, ExtKeyUsageServerAuth, SANs from hosts: IPs go to IPAddresses,
// names to DNSNames) and writes both files. An empty hosts list means
// DefaultHosts(). Hosts may be bracketed IPv6 literals ("[::1]"). The returned
// tls.Certificate's chain is [server cert, CA cert] and Leaf is set.
func LoadOrCreateServerCert(dir string, ca *CA, hosts []string) (tls.Certificate, error) {
	hosts = normaliseHosts(hosts)
	if len(hosts) == 0 {
		hosts = DefaultHosts()
	}
	certPath := filepath.Join(dir, ServerCertFile)
	keyPath := filepath.Join(dir, ServerKeyFile)

	tc, ok, err := loadServerCert(certPath, keyPath, ca, hosts, time.Now())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load server certificate: %w", err)
	}
	if ok {
		return tc, nil
	}

	key, err := NewKey()
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	der, err := issueServerCert(ca, key.Public(), hosts, time.Now(), ServerValidity)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	keyPEM, err := MarshalKeyPEM(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	// Key first: if the certificate write fails, the old pair no longer matches
	// and the next start simply issues again.
	if err := atomicfile.WriteSecret(keyPath, keyPEM); err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	if err := atomicfile.Write(certPath, CertPEM(der), 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// loadServerCert returns ok=false (and no error) when the files are missing or
// unusable and a new certificate should be issued. Read errors other than "not
// found" are returned.
func loadServerCert(certPath, keyPath string, ca *CA, hosts []string, now time.Time) (tls.Certificate, bool, error) {
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, false, nil
	} else if err != nil {
		return tls.Certificate{}, false, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, false, nil
	} else if err != nil {
		return tls.Certificate{}, false, err
	}
	leaf, err := ParseCertPEM(certPEM)
	if err != nil {
		return tls.Certificate{}, false, nil
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil || !key.PublicKey.Equal(leaf.PublicKey) {
		return tls.Certificate{}, false, nil
	}
	if leaf.CheckSignatureFrom(ca.Cert) != nil {
		return tls.Certificate{}, false, nil
	}
	if now.Before(leaf.NotBefore) || now.Add(ServerRenewBefore).After(leaf.NotAfter) {
		return tls.Certificate{}, false, nil
	}
	serverAuth := false
	for _, u := range leaf.ExtKeyUsage {
		serverAuth = serverAuth || u == x509.ExtKeyUsageServerAuth
	}
	if !serverAuth {
		return tls.Certificate{}, false, nil
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return tls.Certificate{}, false, nil
		}
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, true, nil
}

// issueServerCert signs a server certificate for pub covering hosts.
func issueServerCert(ca *CA, pub any, hosts []string, now time.Time, validity time.Duration) ([]byte, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Patchbay relay"},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if len(tmpl.DNSNames) > 0 {
		tmpl.Subject.CommonName = tmpl.DNSNames[0]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return der, nil
}

// normaliseHosts trims space and IPv6 brackets, drops empty entries and duplicates.
func normaliseHosts(hosts []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, h := range hosts {
		h = stripBrackets(strings.TrimSpace(h))
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		out = append(out, h)
	}
	return out
}

func stripBrackets(h string) string {
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// DefaultHosts returns "localhost", "127.0.0.1", "::1" and os.Hostname() (if it
// works and differs from those).
func DefaultHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if name, err := os.Hostname(); err == nil {
		return normaliseHosts(append(hosts, name))
	}
	return hosts
}

// ServerTLSConfig returns the relay's *tls.Config: MinVersion TLS 1.2, the server
// certificate, ClientAuth tls.VerifyClientCertIfGiven and ClientCAs = the CA.
// Enrollment and the technician API are reached without a client certificate;
// the agent endpoint must itself require one (len(VerifiedChains) > 0), read the
// agent with AgentID and check revocation against the store.
func (ca *CA) ServerTLSConfig(serverCert tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
	}
}

// PinnedClientConfig returns a *tls.Config for a client that trusts exactly one
// CA, given by its fingerprint (any form ParseFingerprint accepts), before it
// has the CA certificate (used by `enroll` and `login`). Standard verification
// is replaced by a VerifyConnection that requires a certificate in the presented
// chain whose fingerprint is fp, requires that certificate to be a CA, and
// verifies the leaf against it as the only root, for server auth and for
// serverName (a DNS name or an IP address, optionally bracketed). If serverName
// is empty, the SNI name of the connection is used. A fingerprint that does not
// parse makes every handshake fail with the parse error.
func PinnedClientConfig(fp, serverName string) *tls.Config {
	want, fpErr := ParseFingerprint(fp)
	host := stripBrackets(strings.TrimSpace(serverName))
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: host,
		// Verification is not skipped: VerifyConnection below does it against the pinned CA.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if fpErr != nil {
				return fmt.Errorf("verify server: %w", fpErr)
			}
			name := host
			if name == "" {
				name = cs.ServerName
			}
			return verifyPinned(cs.PeerCertificates, want, name)
		},
	}
}

// verifyPinned checks a presented chain against the CA with fingerprint want.
func verifyPinned(chain []*x509.Certificate, want, host string) error {
	if len(chain) == 0 {
		return errors.New("verify server: no certificate presented")
	}
	var pinned *x509.Certificate
	for _, c := range chain {
		if Fingerprint(c) == want {
			pinned = c
			break
		}
	}
	if pinned == nil {
		return fmt.Errorf("server CA fingerprint mismatch: expected %s, server presented %s; check --ca-fingerprint",
			want, Fingerprint(chain[len(chain)-1]))
	}
	if !pinned.IsCA || !pinned.BasicConstraintsValid {
		return fmt.Errorf("verify server: certificate %s matches the fingerprint but is not a CA certificate", want)
	}
	if host == "" {
		return errors.New("verify server: no server name to check the certificate against")
	}
	roots := x509.NewCertPool()
	roots.AddCert(pinned)
	opts := x509.VerifyOptions{
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if net.ParseIP(host) == nil {
		opts.DNSName = host
	}
	leaf := chain[0]
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("verify server certificate: %w", err)
	}
	if net.ParseIP(host) != nil {
		// VerifyHostname matches an IP literal against the IP SANs only.
		if err := leaf.VerifyHostname(host); err != nil {
			return fmt.Errorf("verify server certificate: %w", err)
		}
	}
	return nil
}
