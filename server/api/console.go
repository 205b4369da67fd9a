package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// BrowserAuth authenticates the web console's requests (package
// server/console implements it). The console calls this same REST API with
// its session cookie instead of a bearer token; auth maps the session to the
// API token it was opened for, and from there on roles are decided exactly
// as for a bearer token, in one place.
type BrowserAuth interface {
	// HasSession reports whether r carries a console session cookie.
	HasSession(r *http.Request) bool
	// Authenticate checks r's session (known, not idle or past its absolute
	// expiry), its Origin (same origin; required on a state-changing
	// request) and, unless the method is GET or HEAD, its CSRF header. It
	// returns the hash of the session's API token; on failure it has
	// answered 401 or 403 with a message.
	Authenticate(w http.ResponseWriter, r *http.Request) (tokenHash string, ok bool)
	// CreateLink stores a one-time login link for the API token with
	// tokenHash and returns the link's path (secret included) and expiry.
	CreateLink(ctx context.Context, tokenHash string) (path string, expires time.Time, err error)
}

// Actor is how the holder of tok appears in the audit log.
func Actor(tok store.APIToken) string { return caller{tok: tok}.actor() }

// credential returns the hash of the API token the request presents: its
// bearer token, or else its console session. On failure it has answered.
func (a *API) credential(w http.ResponseWriter, r *http.Request) (string, bool) {
	authz := r.Header.Get("Authorization")
	if authz == "" && a.Browser != nil && a.Browser.HasSession(r) {
		return a.Browser.Authenticate(w, r)
	}
	secret, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || secret == "" {
		WriteError(w, http.StatusUnauthorized, "missing bearer token: run patchbay login (or log in to the web console)")
		return "", false
	}
	return HashSecret(secret), true
}

func (a *API) registerConsole(mux *http.ServeMux) {
	mux.Handle("POST /v1/console/links", a.auth(apiv1.RoleViewer, a.handleConsoleLink))
}

// handleConsoleLink makes a one-time link that logs the caller's identity
// into the web console (patchbay console).
func (a *API) handleConsoleLink(w http.ResponseWriter, r *http.Request, c caller) {
	if a.Browser == nil {
		WriteError(w, http.StatusServiceUnavailable, "this relay serves no web console")
		return
	}
	path, expires, err := a.Browser.CreateLink(r.Context(), c.tok.Hash)
	if err != nil {
		a.internal(w, r, "create console link", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "console.link", c.tok.ID, map[string]string{
		"expires_at": expires.Format(time.RFC3339)}); err != nil {
		a.internal(w, r, "create console link", fmt.Errorf("audit: %w", err))
		return
	}
	writeJSON(w, http.StatusCreated, apiv1.ConsoleLink{Path: path, ExpiresAt: expires})
}
