package certs

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"slices"
	"time"
)

// RelayClientEKU is the extended key usage that marks a relay's client
// certificate: a relay of a tier presents one to another relay when it
// forwards a technician's session. It lies under the 2.25 UUID arc (ITU-T
// X.667), a random UUID split into arcs that fit a 32-bit int. Agent
// certificates never carry it: SignAgentCSR ignores the request's extensions.
var RelayClientEKU = asn1.ObjectIdentifier{2, 25, 172708284, 472154468, 135984856, 164366099, 718}

// RelayOU is the organisational unit of a relay's client certificate.
const RelayOU = "Patchbay relay"

// RelayClientValidity is the lifetime of a relay's client certificate: a
// relay mints a new one at every start and keeps it in memory only.
const RelayClientValidity = 30 * 24 * time.Hour

// IssueRelayClientCert makes a key and a client certificate for the relay
// node: Subject OU RelayOU and CommonName "relay NODE" (not a UUID, so it can
// never pass as an agent), extended key usages client auth and
// RelayClientEKU. The returned tls.Certificate's chain is [cert, CA cert].
func (ca *CA) IssueRelayClientCert(node string) (tls.Certificate, error) {
	if node == "" {
		return tls.Certificate{}, fmt.Errorf("issue relay client certificate: no node ID")
	}
	key, err := NewKey()
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue relay client certificate: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue relay client certificate: %w", err)
	}
	now := time.Now()
	notAfter := now.Add(RelayClientValidity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "relay " + node, OrganizationalUnit: []string{RelayOU}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{RelayClientEKU},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue relay client certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue relay client certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// IsRelayCert reports whether a client certificate, already verified
// against the CA by the TLS stack, is a relay's: it carries RelayClientEKU
// and the relay OU. It does not verify the certificate.
func IsRelayCert(cert *x509.Certificate) bool {
	if cert == nil || !slices.Contains(cert.Subject.OrganizationalUnit, RelayOU) {
		return false
	}
	return slices.ContainsFunc(cert.UnknownExtKeyUsage, func(o asn1.ObjectIdentifier) bool { return o.Equal(RelayClientEKU) })
}
