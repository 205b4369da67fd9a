package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// Limits on what tokens may be created.
const (
	DefaultEnrollTTL = 24 * time.Hour
	MaxEnrollTTL     = 366 * 24 * time.Hour
	MaxEnrollUses    = 1_000_000
	MaxAPITokenTTL   = 5 * 366 * 24 * time.Hour
)

func (a *API) handleEnrollTokenCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.EnrollTokenRequest
	if !decode(w, r, &req) {
		return
	}
	uses := 1
	if req.Uses != nil {
		uses = *req.Uses
	}
	if uses < 0 || uses > MaxEnrollUses {
		WriteError(w, http.StatusBadRequest, "uses %d: want 0 (unlimited) to %d", uses, MaxEnrollUses)
		return
	}
	ttl := DefaultEnrollTTL
	if req.TTL != "" {
		var err error
		if ttl, err = apiv1.ParseTTL(req.TTL, MaxEnrollTTL); err != nil {
			WriteError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	if err := wire.ValidTags(req.Tags); err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	site, err := a.Store.ListSites(r.Context(), store.Scope{Sites: []string{store.DefaultSiteID}})
	if err != nil || len(site) != 1 {
		a.internal(w, r, "create enrollment token", fmt.Errorf("read the default site: %v", err))
		return
	}
	if req.Site != "" {
		s, err := a.resolveSite(r.Context(), store.Scope{All: true}, req.Site)
		if err != nil {
			a.siteError(w, r, err)
			return
		}
		site[0] = s
	}
	now := a.now()
	secret, hash := NewSecret(PrefixEnroll)
	tok := store.EnrollToken{
		ID: store.NewID(), Hash: hash, Tags: req.Tags, UsesAllowed: uses,
		ExpiresAt: now.Add(ttl), CreatedAt: now, CreatedBy: c.actor(), SiteID: site[0].ID,
	}
	ctx := r.Context()
	if err := a.Store.CreateEnrollToken(ctx, tok); err != nil {
		a.internal(w, r, "create enrollment token", err)
		return
	}
	detail := map[string]string{"uses": strconv.Itoa(uses), "expires_at": tok.ExpiresAt.Format(time.RFC3339), "site": tok.SiteID}
	for k, v := range req.Tags {
		detail["tag."+k] = v
	}
	if err := a.audit(ctx, c.actor(), "enroll-token.create", tok.ID, detail); err != nil {
		a.internal(w, r, "create enrollment token", err)
		return
	}
	out := enrollTokenJSON(tok, siteNames{site[0].ID: site[0].FullName()})
	out.Token = secret
	writeJSON(w, http.StatusCreated, out)
}

func enrollTokenJSON(t store.EnrollToken, names siteNames) apiv1.EnrollToken {
	tags := t.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return apiv1.EnrollToken{
		ID: t.ID, Tags: tags, UsesAllowed: t.UsesAllowed, Uses: t.Uses, ExpiresAt: t.ExpiresAt,
		CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy, Revoked: !t.RevokedAt.IsZero(), Site: names.name(t.SiteID),
	}
}

func (a *API) handleEnrollTokenList(w http.ResponseWriter, r *http.Request, _ caller) {
	toks, err := a.Store.ListEnrollTokens(r.Context())
	if err != nil {
		a.internal(w, r, "list enrollment tokens", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "list enrollment tokens", err)
		return
	}
	out := make([]apiv1.EnrollToken, len(toks))
	for i, t := range toks {
		out[i] = enrollTokenJSON(t, names)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handleEnrollTokenRevoke(w http.ResponseWriter, r *http.Request, c caller) {
	a.revoke(w, r, c, "enroll-token.revoke", "enrollment token", a.Store.RevokeEnrollToken)
}

// revoke is the shared body of the token revocation routes.
func (a *API) revoke(w http.ResponseWriter, r *http.Request, c caller, action, what string,
	fn func(ctx context.Context, id string, now time.Time) error) {
	id := r.PathValue("id")
	err := fn(r.Context(), id, a.now())
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, http.StatusNotFound, "no %s with ID %q", what, id)
		return
	}
	if err == nil {
		err = a.audit(r.Context(), c.actor(), action, id, nil)
	}
	if err != nil {
		a.internal(w, r, "revoke "+what, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) handleAPITokenCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.APITokenRequest
	if !decode(w, r, &req) {
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		var err error
		if ttl, err = apiv1.ParseTTL(req.TTL, MaxAPITokenTTL); err != nil {
			WriteError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	if err := checkAPIToken(req.Role, req.Name); err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	// A person's token belongs to them: it stops when they are disabled,
	// never outranks them and reaches their sites. A token of no user
	// (made with a token of no user) reaches the sites it is given.
	var sites []string
	if c.tok.UserID == "" {
		var err error
		if sites, err = a.resolveGrants(r.Context(), req.Sites); err != nil {
			a.siteError(w, r, err)
			return
		}
	} else if len(req.Sites) > 0 {
		WriteError(w, http.StatusBadRequest, "sites: a token of user %s reaches that user's sites: leave sites out (an admin changes them with patchbay users sites)", c.tok.UserName)
		return
	}
	secret, tok, err := mintUserToken(r.Context(), a.Store, c.actor(), c.tok.UserID, sites, req.Role, req.Name, ttl, a.now())
	if err != nil {
		a.internal(w, r, "create API token", err)
		return
	}
	tok.UserName = c.tok.UserName
	out := apiTokenJSON(tok)
	out.Token = secret
	if names, err := a.siteNames(r.Context()); err == nil && tok.UserID == "" {
		out.Sites = names.names(tok.Sites)
	}
	writeJSON(w, http.StatusCreated, out)
}

func apiTokenJSON(t store.APIToken) apiv1.APIToken {
	return apiv1.APIToken{ID: t.ID, Role: t.Role, Name: t.Name, CreatedAt: t.CreatedAt,
		ExpiresAt: timePtr(t.ExpiresAt), Revoked: !t.RevokedAt.IsZero(), User: t.UserName, Kind: t.Kind}
}

func (a *API) handleAPITokenList(w http.ResponseWriter, r *http.Request, _ caller) {
	toks, err := a.Store.ListAPITokens(r.Context())
	if err != nil {
		a.internal(w, r, "list API tokens", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "list API tokens", err)
		return
	}
	out := make([]apiv1.APIToken, len(toks))
	for i, t := range toks {
		out[i] = apiTokenJSON(t)
		if t.UserID == "" { // a user's token reaches the user's sites (patchbay users list)
			out[i].Sites = names.names(t.Sites)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handleLogin(w http.ResponseWriter, r *http.Request, c caller) {
	if err := a.audit(r.Context(), c.actor(), "login", c.tok.ID, map[string]string{"remote": r.RemoteAddr}); err != nil {
		a.internal(w, r, "login", err)
		return
	}
	a.handleWhoami(w, r, c)
}

func (a *API) handleWhoami(w http.ResponseWriter, r *http.Request, c caller) {
	writeJSON(w, http.StatusOK, a.whoami(r.Context(), c.tok))
}

// whoami describes tok, with the sites it reaches ("all" for every one;
// left empty when they cannot be read).
func (a *API) whoami(ctx context.Context, tok store.APIToken) apiv1.Whoami {
	out := apiv1.Whoami{TokenID: tok.ID, Name: tok.Name, Role: tok.Role, User: tok.UserName,
		CAFingerprint: a.CA.Fingerprint(), ServerVersion: a.Version, Sites: []string{}}
	sites := tok.Sites
	if tok.UserID != "" {
		sites, _ = a.Store.UserSites(ctx, tok.UserID)
	}
	scope := caller{tok: store.APIToken{Role: tok.Role, Sites: sites}}.scope()
	if scope.All {
		out.Sites = []string{apiv1.AllSitesName}
	} else if names, err := a.siteNames(ctx); err == nil {
		out.Sites = names.names(scope.Sites)
	}
	return out
}

func (a *API) handleAuditHead(w http.ResponseWriter, r *http.Request, c caller) {
	if !c.scope().All {
		// The head is what a verification of the whole chain ends at, and
		// only who reads every record can verify it.
		WriteError(w, http.StatusForbidden, "verifying the audit chain needs every record, and %q reaches only some sites: ask an admin (patchbay audit verify)", c.tok.Name)
		return
	}
	seq, hash, err := a.Store.AuditHead(r.Context())
	if err != nil {
		a.internal(w, r, "read audit head", err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.AuditHead{Seq: seq, Hash: hash})
}

func intParam(s string, def, lo, hi int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q: want a whole number from %d to %d", s, lo, hi)
	}
	return n, nil
}
