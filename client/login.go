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
	token = strings.TrimSpace(token)
	if token == "" {
		return Config{}, errors.New("log in: the token is empty")
	}
	p, err := dialPinned(server, fingerprint, token)
	if err != nil {
		return Config{}, err
	}
	defer p.c.Close()
	var who apiv1.Whoami
	if err := p.c.do(ctx, http.MethodPost, "/v1/login", nil, nil, &who); err != nil {
		return Config{}, fmt.Errorf("log in to %s: %w", p.c.base, err)
	}
	return p.config(token, who)
}

// ErrCodeRequired is returned by LoginPassword when the user has a second
// factor and no code was given: ask for one and call again.
var ErrCodeRequired = errors.New("log in: a TOTP code (or a recovery code) is needed")

// LoginPassword logs in as user with a password (and code, a TOTP or
// recovery code, when the user has a second factor), trusting only the CA
// with fingerprint like Login. The relay answers with a session API token
// owned by the user (12 h). It returns the Config to save and the relay's
// answer (whether TOTP must be enrolled, recovery codes left); it saves
// nothing. A missing code gives ErrCodeRequired.
func LoginPassword(ctx context.Context, server, fingerprint, user, password, code string) (Config, apiv1.PasswordLogin, error) {
	var out apiv1.PasswordLogin
	if strings.TrimSpace(user) == "" {
		return Config{}, out, errors.New("log in: the user name is empty")
	}
	if password == "" {
		return Config{}, out, errors.New("log in: the password is empty")
	}
	p, err := dialPinned(server, fingerprint, "")
	if err != nil {
		return Config{}, out, err
	}
	defer p.c.Close()
	req := apiv1.PasswordLoginRequest{User: user, Password: password, Code: strings.TrimSpace(code)}
	if err := p.c.do(ctx, http.MethodPost, "/v1/login/password", nil, req, &out); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == apiv1.ErrCodeTOTPRequired {
			return Config{}, out, ErrCodeRequired
		}
		return Config{}, out, fmt.Errorf("log in to %s as %s: %w", p.c.base, user, err)
	}
	cfg, err := p.config(out.Token, out.Whoami)
	cfg.User = out.User
	return cfg, out, err
}

// pinned is a client for a first contact with a relay, trusting only the CA
// with the fingerprint given, and the CA certificate it saw.
type pinned struct {
	c  *Client
	fp string
	mu sync.Mutex
	ca *x509.Certificate
}

// dialPinned prepares a client for server that verifies the chain against
// the CA with fingerprint (any form certs.ParseFingerprint accepts) and
// remembers that CA's certificate.
func dialPinned(server, fingerprint, token string) (*pinned, error) {
	base, err := ParseServerURL(server)
	if err != nil {
		return nil, fmt.Errorf("log in: %w", err)
	}
	fp, err := certs.ParseFingerprint(fingerprint)
	if err != nil {
		return nil, fmt.Errorf("log in: --ca-fingerprint: %w", err)
	}
	p := &pinned{fp: fp}
	tlsCfg := certs.PinnedClientConfig(fp, base.Hostname())
	verify := tlsCfg.VerifyConnection
	tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verify(cs); err != nil {
			return err
		}
		for _, cert := range cs.PeerCertificates {
			if certs.Fingerprint(cert) == fp {
				p.mu.Lock()
				p.ca = cert
				p.mu.Unlock()
				break
			}
		}
		return nil
	}
	p.c = &Client{
		cfg:   Config{Server: base.String(), Token: token},
		base:  base,
		hc:    newHTTPClient(tlsCfg),
		login: true,
	}
	return p, nil
}

// config checks what the relay said against the pinned CA and returns the
// Config to save for token.
func (p *pinned) config(token string, who apiv1.Whoami) (Config, error) {
	base, fp := p.c.base, p.fp
	p.mu.Lock()
	caCert := p.ca
	p.mu.Unlock()
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
	return Config{
		Server:        base.String(),
		Token:         token,
		CAPEM:         string(certs.CertPEM(caCert.Raw)),
		CAFingerprint: fp,
		Name:          who.Name,
		Role:          who.Role,
		User:          who.User,
	}, nil
}
