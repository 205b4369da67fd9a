package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/apiv1"
)

// Login connects to the relay at server trusting only the CA whose
// fingerprint is given (any form certs.ParseFingerprint accepts), takes that
// CA's certificate from the TLS chain the relay presents, and checks the
// token with POST /v1/login (which the relay audits). It returns the Config
// to save; it saves nothing itself.
func Login(ctx context.Context, server, token, fingerprint string) (Config, error) {
	base, err := ParseServerURL(server)
	if err != nil {
		return Config{}, fmt.Errorf("log in: %w", err)
	}
	fp, err := certs.ParseFingerprint(fingerprint)
	if err != nil {
		return Config{}, fmt.Errorf("log in: --ca-fingerprint: %w", err)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return Config{}, errors.New("log in: the token is empty")
	}

	// The pinned config verifies the chain against the CA with fingerprint
	// fp; on success remember that CA certificate.
	tlsCfg := certs.PinnedClientConfig(fp, base.Hostname())
	var (
		mu sync.Mutex
		ca *x509.Certificate
	)
	verify := tlsCfg.VerifyConnection
	tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verify(cs); err != nil {
			return err
		}
		for _, cert := range cs.PeerCertificates {
			if certs.Fingerprint(cert) == fp {
				mu.Lock()
				ca = cert
				mu.Unlock()
				break
			}
		}
		return nil
	}

	c := &Client{
		cfg:   Config{Server: base.String(), Token: token},
		base:  base,
		hc:    newHTTPClient(tlsCfg),
		login: true,
	}
	defer c.Close()
	var who apiv1.Whoami
	if err := c.do(ctx, http.MethodPost, "/v1/login", nil, nil, &who); err != nil {
		return Config{}, fmt.Errorf("log in to %s: %w", base, err)
	}
	mu.Lock()
	caCert := ca
	mu.Unlock()
	if caCert == nil {
		// Unreachable with a verified TLS connection; kept as a guard.
		return Config{}, fmt.Errorf("log in to %s: the relay's chain did not include the CA %s", base, fp)
	}
	if who.CAFingerprint != "" {
		if claimed, err := certs.ParseFingerprint(who.CAFingerprint); err != nil || claimed != fp {
			return Config{}, fmt.Errorf("log in to %s: the relay reports CA %s but its TLS chain is anchored in %s",
				base, who.CAFingerprint, fp)
		}
	}
	cfg := Config{
		Server:        base.String(),
		Token:         token,
		CAPEM:         string(certs.CertPEM(caCert.Raw)),
		CAFingerprint: fp,
		Name:          who.Name,
		Role:          who.Role,
	}
	return cfg, nil
}
