// Package api serves the relay's REST API: enrollment, and what technicians
// and admins do through the patchbay CLI. Bodies are the types of package
// apiv1. Authentication is a bearer token stored hashed; every route names
// the least role it needs. Everything a person changes is appended to the
// audit chain before the answer is sent.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/server/authlimit"
	"github.com/patchbay/patchbay/server/releases"
	"github.com/patchbay/patchbay/server/sso"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// Hub is what the API needs from the hub of connected agents.
type Hub interface {
	Online(id string) bool
	Revoke(ctx context.Context, id string) error
}

// API holds the dependencies of the handlers. All fields are set by the
// relay before Register and not changed afterwards.
type API struct {
	Store *store.Store
	Hub   Hub
	Jobs  Jobs // nil: job routes answer 503 where they need it
	// Sessions brokers interactive sessions and SSH signs their
	// certificates; nil: session routes answer 503.
	Sessions Sessions
	SSH      SSHCA
	CA       *certs.CA
	Log      zerolog.Logger
	Version  string
	// AllowEmptyReason lets technicians open sessions without a reason
	// (patchbay-server serve --allow-empty-reason); by default one is
	// required, since the user at the machine is shown it.
	AllowEmptyReason bool
	// AgentCertValidity is the lifetime of enrolled agents' certificates
	// (default one year).
	AgentCertValidity time.Duration
	// Browser authenticates the web console's session cookies (nil: only
	// bearer tokens are accepted).
	Browser BrowserAuth
	// Limiter counts failed credentials and throttles their sources (nil:
	// no throttling). The relay flushes its counts into the audit log.
	Limiter *authlimit.Limiter
	// Access ends what revoked API tokens opened, on every relay node
	// (EndAccess); nil: revoking a token only refuses it from then on.
	Access AccessEnder
	// SSO is the OpenID provider for single sign-on (nil: none).
	SSO *sso.Provider
	// Forward forwards a session to the relay of the tier that holds its
	// agent (nil: such a session is refused).
	Forward SessionForwarder
	// Releases is the relay's --releases directory: agent self-updates
	// (jobs of plugin wire.UpgradePlugin) install its versions.
	Releases releases.Dir
	// Refresh asks a connected agent to report its inventory now
	// (hub.ErrOffline when it is not connected here); nil: refresh answers 503.
	Refresh func(ctx context.Context, agentID string) error
	// Alerts acknowledges and resolves alerts (nil: those routes answer 503).
	Alerts Alerts
	// Now returns the current time (default time.Now); tests may fix it.
	Now func() time.Time
	// Policies hears of policy changes (nil: agents get them on reconnect).
	Policies PolicyNotifier
	// CheckedAt returns when an agent last reported a policy's check (nil:
	// not shown).
	CheckedAt func(agentID, policyID string) time.Time
}

// maxBody bounds every request body.
const maxBody = 64 << 10

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/enroll", a.handleEnroll)

	mux.HandleFunc("POST /v1/login/password", a.handlePasswordLogin)
	mux.HandleFunc("POST /v1/login/sso", a.handleSSOLogin)
	mux.Handle("POST /v1/login", a.auth(apiv1.RoleViewer, a.handleLogin))
	mux.Handle("GET /v1/whoami", a.auth(apiv1.RoleViewer, a.handleWhoami))

	mux.Handle("GET /v1/agents", a.auth(apiv1.RoleViewer, a.handleAgentsList))
	mux.Handle("GET /v1/agents/{id}", a.auth(apiv1.RoleViewer, a.handleAgentShow))
	mux.Handle("POST /v1/agents/{id}/revoke", a.auth(apiv1.RoleAdmin, a.handleAgentRevoke))
	a.registerInventory(mux)

	mux.Handle("POST /v1/enroll-tokens", a.auth(apiv1.RoleAdmin, a.handleEnrollTokenCreate))
	mux.Handle("GET /v1/enroll-tokens", a.auth(apiv1.RoleAdmin, a.handleEnrollTokenList))
	mux.Handle("DELETE /v1/enroll-tokens/{id}", a.auth(apiv1.RoleAdmin, a.handleEnrollTokenRevoke))

	mux.Handle("POST /v1/api-tokens", a.auth(apiv1.RoleAdmin, a.handleAPITokenCreate))
	mux.Handle("GET /v1/api-tokens", a.auth(apiv1.RoleAdmin, a.handleAPITokenList))
	mux.Handle("DELETE /v1/api-tokens/{id}", a.auth(apiv1.RoleAdmin, a.handleAPITokenRevoke))

	mux.Handle("GET /v1/audit", a.auth(apiv1.RoleViewer, a.handleAuditList))
	mux.Handle("GET /v1/audit/head", a.auth(apiv1.RoleViewer, a.handleAuditHead))
	mux.Handle("GET /v1/audit/export", a.auth(apiv1.RoleViewer, a.handleAuditExport))

	a.registerUsers(mux)
	a.registerCatalog(mux)
	a.registerJobs(mux)
	a.registerSessions(mux)
	a.registerConsole(mux)
	a.registerAgentRuns(mux)
	a.registerSites(mux)
	a.registerAlerts(mux)
	a.registerSchedules(mux)
	a.registerPolicies(mux)
	a.registerCheckStates(mux)
	a.registerIncidents(mux)
	a.registerReports(mux)
	a.registerReportSchedules(mux)
}

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// caller is the authenticated person or script behind a request.
type caller struct {
	tok store.APIToken
	// site, when set, narrows the caller's scope to that one site (a patch
	// policy's jobs, made as its owner).
	site string
}

// actor is how the caller appears in the audit log: the token's name, role
// and ID; for a user's session "NAME (ROLE, session ID)", for a user's API
// token "USER: NAME (ROLE, api token ID)".
func (c caller) actor() string {
	switch {
	case c.tok.UserID != "" && c.tok.Kind != store.KindAPI:
		return fmt.Sprintf("%s (%s, session %s)", c.tok.UserName, c.tok.Role, shortID(c.tok.ID))
	case c.tok.UserID != "":
		return fmt.Sprintf("%s: %s (%s, api token %s)", c.tok.UserName, c.tok.Name, c.tok.Role, shortID(c.tok.ID))
	}
	return fmt.Sprintf("%s (%s, api token %s)", c.tok.Name, c.tok.Role, shortID(c.tok.ID))
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:] // UUIDv7: the tail is the random part
	}
	return id
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c caller)

// auth checks the bearer token and the role before calling h.
func (a *API) auth(role string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.throttled(w, r, "") {
			return
		}
		hash, ok := a.credential(w, r) // bearer token or console session
		if !ok {
			return
		}
		tok, err := a.Store.LookupAPIToken(r.Context(), hash, a.now())
		if errors.Is(err, store.ErrNotFound) {
			a.authFailed(r, "", "api token")
			WriteError(w, http.StatusUnauthorized, "API token unknown, expired or revoked: ask an admin for a new one (patchbay api-tokens create)")
			return
		}
		if err != nil {
			a.internal(w, r, "look up API token", err)
			return
		}
		if tok.Kind == store.KindEnrol && !enrolOnly[r.URL.Path] {
			WriteError(w, http.StatusForbidden, "this relay requires two-factor login: enrol TOTP first (patchbay account totp enrol), then log in again")
			return
		}
		if apiv1.RoleRank(tok.Role) < apiv1.RoleRank(role) {
			WriteError(w, http.StatusForbidden, "this needs the %s role; token %q has role %s", role, tok.Name, tok.Role)
			return
		}
		h(w, r, caller{tok: tok})
	})
}

// WriteError answers with status and {"error": message}.
func WriteError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, apiv1.Error{Error: fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// internal logs err and answers 500 without leaking details.
func (a *API) internal(w http.ResponseWriter, r *http.Request, step string, err error) {
	a.Log.Error().Err(err).Str("path", r.URL.Path).Msg(step)
	WriteError(w, http.StatusInternalServerError, "%s failed on the relay; see its log", step)
}

// decode reads a JSON body of at most maxBody bytes, refusing unknown fields.
// On failure it has already answered 400 (or 413).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = checkJSONText(b)
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
		if err == nil && dec.More() {
			err = errors.New("trailing data after the JSON body")
		}
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		WriteError(w, http.StatusRequestEntityTooLarge, "request body over %d bytes", maxBody)
		return false
	case err != nil:
		WriteError(w, http.StatusBadRequest, "request body: %v", err)
		return false
	}
	return true
}

// Audit appends a record to the audit chain; the job dispatcher records
// job outcomes through it.
func (a *API) Audit(ctx context.Context, actor, action, target string, detail map[string]string) error {
	return a.audit(ctx, actor, action, target, detail)
}

// audit appends a record. Callers report a change whose audit record
// cannot be written as failed. A record about a job ("job ID") of one site
// is about that site (detail "site"), unless it names one.
func (a *API) audit(ctx context.Context, actor, action, target string, detail map[string]string) error {
	if id, ok := strings.CutPrefix(target, "job "); ok && detail["site"] == "" {
		if sites, err := a.Store.JobSites(ctx, id); err == nil && len(sites) == 1 {
			detail = maps.Clone(detail)
			if detail == nil {
				detail = map[string]string{}
			}
			detail["site"] = sites[0]
		}
	}
	_, err := a.Store.AppendAudit(ctx, audit.Record{
		Time: a.now(), Actor: actor, Action: action, Target: target, Detail: detail,
	})
	if err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	return nil
}

// Secret prefixes make leaked tokens recognisable (and greppable).
const (
	PrefixEnroll = "pbe_"
	PrefixAPI    = "pbt_"
)

// NewSecret returns a random token with prefix and the hash to store.
func NewSecret(prefix string) (secret, hash string) {
	var b [32]byte
	rand.Read(b[:])
	secret = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashSecret(secret)
}

// HashSecret is how tokens are stored: hex SHA-256. The secrets are 256-bit
// random, so a fast hash is enough.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// MintAPIToken creates an API token of no user that reaches every site, and
// audits it: the relay's admin-token command uses it.
func MintAPIToken(ctx context.Context, st *store.Store, actor, role, name string, ttl time.Duration, now time.Time) (secret string, tok store.APIToken, err error) {
	return mintUserToken(ctx, st, actor, "", []string{store.AllSites}, role, name, ttl, now)
}

// mintUserToken is MintAPIToken for a token owned by the user with userID
// (it then has the user's sites), or of no user with the grants sites.
func mintUserToken(ctx context.Context, st *store.Store, actor, userID string, sites []string, role, name string, ttl time.Duration, now time.Time) (secret string, tok store.APIToken, err error) {
	if err := checkAPIToken(role, name); err != nil {
		return "", tok, err
	}
	secret, hash := NewSecret(PrefixAPI)
	tok = store.APIToken{ID: store.NewID(), Hash: hash, Role: role, Name: name, CreatedAt: now, UserID: userID, Sites: sites}
	if ttl > 0 {
		tok.ExpiresAt = now.Add(ttl)
	}
	if err := st.CreateAPIToken(ctx, tok); err != nil {
		return "", tok, err
	}
	detail := map[string]string{"name": name, "role": role}
	if userID != "" {
		detail["user_id"] = userID
	} else {
		detail["sites"] = strings.Join(sites, ",")
	}
	_, err = st.AppendAudit(ctx, audit.Record{Time: now, Actor: actor, Action: "api-token.create", Target: tok.ID,
		Detail: detail})
	return secret, tok, err
}

// checkAPIToken validates what a new API token is made of.
func checkAPIToken(role, name string) error {
	if apiv1.RoleRank(role) == 0 {
		return fmt.Errorf("role %q: want viewer, auditor, technician or admin", role)
	}
	if !validName(name) {
		return fmt.Errorf("name %q: want 1-64 of [A-Za-z0-9_.@-]", name)
	}
	return nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.@-", c)) {
			return false
		}
	}
	return true
}
