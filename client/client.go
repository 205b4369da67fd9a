// Package client is the Go client of the relay's REST API (/v1/...) and the
// patchbay CLI's saved configuration.
//
// Trust: `patchbay login` pins the relay's CA by the fingerprint the admin
// gives (certs.PinnedClientConfig), keeps the CA certificate from the TLS
// chain and saves it. Every later connection trusts exactly that certificate
// as its only root (no system roots), so a relay with a certificate from
// any other CA, public or not, is refused.
//
// Errors: a non-2xx answer becomes an *APIError carrying the relay's message
// verbatim; each method prefixes what it was doing ("list agents: ..."); a
// connection failure names the relay's URL.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/rs/zerolog"
)

// Timeout bounds connecting, the TLS handshake and each whole request.
const Timeout = 30 * time.Second

const (
	maxResponse  = 64 << 20 // bytes of a successful answer
	maxErrorBody = 64 << 10 // bytes read of an error answer
)

// UserAgent is sent with every request.
const UserAgent = "patchbay-cli"

// Client talks to one relay with one API token. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	hc   *http.Client
	tls  *tls.Config // the pinned trust, also used for session websockets
	// login is set for the pinned-fingerprint client used by Login, whose
	// certificate errors need a different hint.
	login bool
}

// New returns a client for the relay in cfg that trusts only cfg's CA
// certificate.
func New(cfg Config) (*Client, error) {
	base, err := ParseServerURL(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	ca, err := cfg.caCert()
	if err != nil {
		return nil, fmt.Errorf("client: %w (run patchbay login again)", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	// The transport adds "h2" to its TLS config; session websockets need
	// HTTP/1.1, so each gets its own copy.
	return &Client{cfg: cfg, base: base, hc: newHTTPClient(tlsCfg.Clone()), tls: tlsCfg}, nil
}

// newHTTPClient returns an HTTP client with the given TLS settings, proxies
// from the environment (HTTPS_PROXY, NO_PROXY), and time limits. Redirects
// are not followed: the API never redirects, and following one could carry
// the token elsewhere.
func newHTTPClient(tlsCfg *tls.Config) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   Timeout,
		ResponseHeaderTimeout: Timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Config returns the configuration the client was made with.
func (c *Client) Config() Config { return c.cfg }

// Server returns the relay's base URL.
func (c *Client) Server() string { return c.base.String() }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// APIError is a non-2xx answer from the relay.
type APIError struct {
	Status  int    // HTTP status code
	Message string // the relay's message (apiv1.Error), verbatim
	Code    string // the relay's error code (apiv1.Error.Code), mostly empty
}

// Error returns the relay's message; for 401 it adds how to log in again,
// unless the relay's message already says so.
func (e *APIError) Error() string {
	if e.Status == http.StatusUnauthorized && !strings.Contains(e.Message, "patchbay login") {
		return e.Message + "; log in again with patchbay login"
	}
	return e.Message
}

// IsStatus reports whether err is (or wraps) an *APIError with that status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// pathSeg escapes one path segment taken from user input. Empty, "." and
// ".." are refused: the relay's router would clean them into another path.
func pathSeg(what, s string) (string, error) {
	if s == "" || s == "." || s == ".." {
		return "", fmt.Errorf("invalid %s %q", what, s)
	}
	return url.PathEscape(s), nil
}

// do sends one request to path (already escaped, starting with "/") and
// decodes a 2xx JSON answer into out (nil: ignore the body).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	target := c.base.String() + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}

	start := time.Now()
	resp, err := c.hc.Do(req)
	log := zerolog.Ctx(ctx)
	if err != nil {
		log.Debug().Str("method", method).Str("path", path).Err(err).Msg("request failed")
		return c.connError(err)
	}
	defer resp.Body.Close()
	log.Debug().Str("method", method).Str("path", path).Int("status", resp.StatusCode).
		Dur("duration", time.Since(start)).Msg("request")

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxResponse))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decode answer from %s: %w", c.base, err)
	}
	return nil
}

// connError explains a failure to reach the relay, naming its URL.
func (c *Client) connError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var hint string
	var uae x509.UnknownAuthorityError
	var cve *tls.CertificateVerificationError
	if !c.login && (errors.As(err, &uae) || errors.As(err, &cve)) {
		hint = "; the relay's certificate does not verify against the CA saved at login" +
			" (if the relay's CA was replaced, run patchbay login again with its new --ca-fingerprint)"
	}
	if c.login {
		return fmt.Errorf("connect: %w", err) // Login names the relay itself
	}
	return fmt.Errorf("connect to relay %s: %w%s", c.base, err, hint)
}

// apiError reads a non-2xx answer into an *APIError.
func apiError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e apiv1.Error
	msg, code := "", ""
	if json.Unmarshal(body, &e) == nil {
		msg, code = strings.TrimSpace(e.Error), e.Code
	}
	if msg == "" {
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			msg = fmt.Sprintf("relay answered HTTP %s, redirecting to %q: check the server URL",
				resp.Status, resp.Header.Get("Location"))
		default:
			msg = "relay answered HTTP " + resp.Status
			if line := firstTextLine(body); line != "" {
				msg += ": " + line
			}
		}
	}
	return &APIError{Status: resp.StatusCode, Message: msg, Code: code}
}

// firstTextLine returns the first line of a plain-text body, cut to 200
// bytes, or "" for HTML, binary or empty bodies.
func firstTextLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" || s[0] == '<' || !utf8.ValidString(s) {
		return ""
	}
	s, _, _ = strings.Cut(s, "\n")
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return ""
	}
	return s
}
