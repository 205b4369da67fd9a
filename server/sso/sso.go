// Package sso is the relay's side of OpenID Connect single sign-on: the
// provider's configuration (issuer, client, allowed domains and groups, the
// mapping of the provider's groups to Patchbay roles), the authorization
// code flow with PKCE (S256) and a nonce, the ID token's verification
// (signature, issuer, audience, expiry, nonce: github.com/coreos/go-oidc),
// and the decision whether a verified identity may sign in and with which
// role (Decide). The HTTP flow (cookies, callback, the CLI's loopback
// hand-off) is the web console's; creating and updating users is the API's.
package sso

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// DefaultGroupsClaim is the claim that carries a person's groups unless
// Config.GroupsClaim names another.
const DefaultGroupsClaim = "groups"

// DefaultScopes are asked of the provider unless Config.Scopes says otherwise.
var DefaultScopes = []string{oidc.ScopeOpenID, "email", "profile", "groups"}

// CallbackPath is where the provider sends the browser back: register
// https://RELAY/console/oidc/callback as the client's redirect URI.
const CallbackPath = "/console/oidc/callback"

// Config configures single sign-on.
type Config struct {
	Issuer       string // exactly as the provider's discovery document says (trailing slash included)
	ClientID     string
	ClientSecret string
	// AllowedDomains, when set, admits only people whose verified email
	// (email_verified true) is in one of these domains.
	AllowedDomains []string
	// AllowedGroups, when set, admits only members of one of these groups.
	AllowedGroups []string
	GroupsClaim   string            // default DefaultGroupsClaim
	RoleMap       map[string]string // provider group -> Patchbay role; the highest role of a person's groups wins
	// SiteMap maps provider groups to the sites they reach ("ORG/SITE",
	// a site name or ID, or "all"); nil: sites are not managed by the
	// provider (a first sign-in grants the default site, admins change it).
	SiteMap map[string][]string
	Scopes  []string // default DefaultScopes
	// RedirectURL is the callback URL registered at the provider; empty:
	// https://<the Host the browser used>/console/oidc/callback.
	RedirectURL string
	// CAFile is a PEM file of CAs to trust for the provider, beside the
	// system's (SSL_CERT_FILE also works).
	CAFile string
	// AllowHTTP accepts an http:// issuer (a lab or test provider on
	// loopback); never in production: tokens would cross the network in clear.
	AllowHTTP bool
}

// ParseRoleMap parses "group=role,group=role". Group names may contain
// anything but ',' and '='; roles are viewer, auditor, technician or admin.
func ParseRoleMap(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		group, role, ok := strings.Cut(part, "=")
		group, role = strings.TrimSpace(group), strings.TrimSpace(role)
		if !ok || group == "" {
			return nil, fmt.Errorf("--oidc-role-map %q: want group=role pairs separated by commas, e.g. helpdesk=technician,it-admins=admin", part)
		}
		if apiv1.RoleRank(role) == 0 {
			return nil, fmt.Errorf("--oidc-role-map %q: role %q: want viewer, auditor, technician or admin", part, role)
		}
		m[group] = role
	}
	return m, nil
}

// ParseSiteMap parses "group=site,group=site" (a group may appear more than
// once, for several sites). Sites are resolved at each sign-in, so a site
// created later can be mapped before it exists.
func ParseSiteMap(s string) (map[string][]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	m := map[string][]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		group, site, ok := strings.Cut(part, "=")
		group, site = strings.TrimSpace(group), strings.TrimSpace(site)
		if !ok || group == "" || site == "" {
			return nil, fmt.Errorf("--oidc-site-map %q: want group=site pairs separated by commas, e.g. acme-helpdesk=Acme/HQ,msp-staff=all", part)
		}
		if !slices.Contains(m[group], site) {
			m[group] = append(m[group], site)
		}
	}
	return m, nil
}

// SitesOf returns the site references the person's groups map to (nil
// when the provider does not manage sites: Config.SiteMap is nil).
func (p *Provider) SitesOf(id Identity) (refs []string, managed bool) {
	if p.cfg.SiteMap == nil {
		return nil, false
	}
	refs = []string{}
	for _, g := range id.Groups {
		for _, s := range p.cfg.SiteMap[g] {
			if !slices.Contains(refs, s) {
				refs = append(refs, s)
			}
		}
	}
	return refs, true
}

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		return errors.New("--oidc-issuer is required for single sign-on")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("--oidc-issuer %q: want the provider's https:// issuer URL, exactly as its discovery document states it", c.Issuer)
	case u.Scheme == "http" && !c.AllowHTTP:
		return fmt.Errorf("--oidc-issuer %q is plain http: tokens would cross the network unencrypted; use the provider's https:// URL (or --oidc-allow-http for a lab provider on loopback)", c.Issuer)
	case c.ClientID == "":
		return errors.New("--oidc-client-id is required: the client ID the provider gave Patchbay")
	case c.ClientSecret == "":
		return errors.New("--oidc-client-secret-file is required: a file holding the client secret the provider gave Patchbay")
	case len(c.RoleMap) == 0:
		return errors.New("--oidc-role-map is required: map at least one provider group to a role, e.g. --oidc-role-map helpdesk=technician,it-admins=admin (nobody signs in without a mapped group)")
	}
	if c.RedirectURL != "" {
		if r, err := url.Parse(c.RedirectURL); err != nil || r.Scheme != "https" || r.Path != CallbackPath {
			return fmt.Errorf("--oidc-redirect-url %q: want https://RELAY-HOST[:PORT]%s", c.RedirectURL, CallbackPath)
		}
	}
	for i, d := range c.AllowedDomains {
		c.AllowedDomains[i] = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = DefaultGroupsClaim
	}
	if len(c.Scopes) == 0 {
		c.Scopes = DefaultScopes
	}
	if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
	return nil
}

// ReadSecretFile reads a client secret file: its first line, trimmed.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--oidc-client-secret-file: %w", err)
	}
	s, _, _ := strings.Cut(string(b), "\n")
	if s = strings.TrimSpace(s); s == "" {
		return "", fmt.Errorf("--oidc-client-secret-file %s is empty: put the client secret on its first line", path)
	}
	return s, nil
}

// Provider talks to one OpenID provider. Discovery happens on first use
// and is retried at each sign-in until it succeeds, so a relay starts even
// while the provider is down. Safe for concurrent use.
type Provider struct {
	cfg Config
	hc  *http.Client
	log zerolog.Logger

	mu       sync.Mutex
	op       *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

// New returns a Provider for cfg (validated here).
func New(cfg Config, log zerolog.Logger) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc, err := httpClient(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	return &Provider{cfg: cfg, hc: hc, log: log}, nil
}

// Config returns the validated configuration.
func (p *Provider) Config() Config { return p.cfg }

func httpClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--oidc-ca: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("--oidc-ca %s: no PEM certificate in it", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}, nil
}

// discover fetches the provider's discovery document once.
func (p *Provider) discover(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.op != nil {
		return p.op, p.verifier, nil
	}
	// The provider keeps this context's client for fetching its signing
	// keys later; the request's deadline must not come along.
	op, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), p.hc), p.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("reach the identity provider %s: %w (check --oidc-issuer, the network and --oidc-ca)", p.cfg.Issuer, err)
	}
	p.op, p.verifier = op, op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID})
	p.log.Info().Str("issuer", p.cfg.Issuer).Str("authorization_endpoint", op.Endpoint().AuthURL).Msg("single sign-on provider discovered")
	return p.op, p.verifier, nil
}

// Discover fetches the discovery document now (the relay calls it at start
// to report a misconfiguration early; a failure is retried at sign-in).
func (p *Provider) Discover(ctx context.Context) error {
	_, _, err := p.discover(ctx)
	return err
}

func (p *Provider) oauth(op *oidc.Provider, redirectURL string) *oauth2.Config {
	return &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Endpoint: op.Endpoint(),
		RedirectURL: redirectURL, Scopes: p.cfg.Scopes}
}

// RedirectURL is the callback URL for a request that reached the relay at
// host (the configured one when set).
func (p *Provider) RedirectURL(host string) string {
	if p.cfg.RedirectURL != "" {
		return p.cfg.RedirectURL
	}
	return "https://" + host + CallbackPath
}

// AuthURL is where to send the browser to sign in: the authorization code
// flow with state, nonce and the S256 challenge of verifier.
func (p *Provider) AuthURL(ctx context.Context, redirectURL, state, nonce, verifier string) (string, error) {
	op, _, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	return p.oauth(op, redirectURL).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// Identity is a person as the provider vouched for them.
type Identity struct {
	Issuer, Subject   string
	Email             string
	EmailVerified     bool
	Name              string
	PreferredUsername string
	Groups            []string
	GroupsFound       bool // the groups claim was present (in the ID token or from the userinfo endpoint)
}

// Exchange redeems the authorization code (with the PKCE verifier),
// verifies the ID token (signature, issuer, audience, expiry) and its nonce,
// and returns who signed in. Claims the ID token lacks (providers often put
// email or groups only at the userinfo endpoint) are read from userinfo,
// whose subject must be the ID token's.
func (p *Provider) Exchange(ctx context.Context, redirectURL, code, verifier, nonce string) (Identity, error) {
	var id Identity
	op, idv, err := p.discover(ctx)
	if err != nil {
		return id, err
	}
	ctx = oidc.ClientContext(ctx, p.hc)
	tok, err := p.oauth(op, redirectURL).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return id, fmt.Errorf("redeem the sign-in code at the identity provider: %w (check --oidc-client-id, the client secret and the redirect URI registered there: %s)", err, redirectURL)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return id, errors.New("the identity provider answered without an ID token: is the client an OpenID Connect client with the openid scope?")
	}
	idt, err := idv.Verify(ctx, raw)
	if err != nil {
		return id, fmt.Errorf("verify the ID token: %w", err)
	}
	if idt.Nonce != nonce {
		return id, errors.New("verify the ID token: its nonce is not this sign-in's (a replayed token?): start again")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return id, fmt.Errorf("verify the access token against the ID token: %w", err)
		}
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return id, fmt.Errorf("read the ID token's claims: %w", err)
	}
	_, hasGroups := claims[p.cfg.GroupsClaim]
	_, hasEmail := claims["email"]
	if (!hasGroups || !hasEmail) && op.UserInfoEndpoint() != "" {
		ui, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return id, fmt.Errorf("read the userinfo endpoint for email and groups: %w", err)
		}
		if ui.Subject != idt.Subject {
			return id, fmt.Errorf("userinfo is for subject %q, the ID token for %q: refusing the sign-in", ui.Subject, idt.Subject)
		}
		more := map[string]any{}
		if err := ui.Claims(&more); err != nil {
			return id, fmt.Errorf("read the userinfo claims: %w", err)
		}
		for k, v := range more {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	id = Identity{Issuer: idt.Issuer, Subject: idt.Subject}
	id.Email, _ = claims["email"].(string)
	id.Name, _ = claims["name"].(string)
	id.PreferredUsername, _ = claims["preferred_username"].(string)
	switch v := claims["email_verified"].(type) {
	case bool:
		id.EmailVerified = v
	case string: // some providers send "true"
		id.EmailVerified = v == "true"
	}
	id.Groups, id.GroupsFound = groupsOf(claims[p.cfg.GroupsClaim])
	return id, nil
}

// groupsOf reads a groups claim: a list of strings or one string.
func groupsOf(v any) ([]string, bool) {
	switch g := v.(type) {
	case []any:
		var out []string
		for _, x := range g {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		sort.Strings(out)
		return out, true
	case string:
		if g == "" {
			return nil, true
		}
		return []string{g}, true
	}
	return nil, false
}
