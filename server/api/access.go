package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/patchbay/patchbay/server/access"
	"github.com/patchbay/patchbay/server/store"
)

// AccessEnder ends what API tokens give access to, on every relay node
// (*access.Ender).
type AccessEnder interface {
	EndAccess(ctx context.Context, tokenIDs []string, reason string) (access.Result, error)
}

// EndAccess ends, everywhere and within a second, what the API tokens
// tokenIDs give access to: their SSH certificates are revoked at every
// agent (refused on new connections, live connections cut with "the
// technician's access was revoked"), and the interactive sessions they
// opened end, the technician's websocket closing with "session ended: " +
// reason, which is also the session's recorded end reason (e.g. "access
// revoked: API token alice was revoked by admin"). Jobs the tokens started
// go on: they belong to the organisation.
//
// Revoke the tokens in the store first (Store.RevokeAPIToken, or disable
// their user), then call EndAccess: requests that raced with the
// revocation check the token again after they are recorded. Disabling a
// user calls it with all of the user's tokens. Without an AccessEnder (a
// relay built without one) it does nothing.
func (a *API) EndAccess(ctx context.Context, tokenIDs []string, reason string) (access.Result, error) {
	if a.Access == nil {
		return access.Result{}, nil
	}
	return a.Access.EndAccess(ctx, tokenIDs, reason)
}

// handleAPITokenRevoke revokes an API token named by ID, unique ID prefix
// or name, then ends its access (EndAccess) before it answers.
func (a *API) handleAPITokenRevoke(w http.ResponseWriter, r *http.Request, c caller) {
	tok, ok := a.findAPIToken(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if err := a.Store.RevokeAPIToken(ctx, tok.ID, a.now()); err != nil {
		a.internal(w, r, "revoke API token", err)
		return
	}
	reason := fmt.Sprintf("access revoked: API token %s was revoked by %s", tok.Name, c.tok.Name)
	res, endErr := a.EndAccess(context.WithoutCancel(ctx), []string{tok.ID}, reason)
	detail := map[string]string{"name": tok.Name, "ssh_certificates_revoked": strconv.Itoa(res.Certificates)}
	if endErr != nil {
		detail["end_access_error"] = endErr.Error()
	}
	if err := a.audit(ctx, c.actor(), "api-token.revoke", tok.ID, detail); err != nil {
		a.internal(w, r, "revoke API token", err)
		return
	}
	if endErr != nil {
		a.internal(w, r, "end the revoked token's access (the token is revoked; run the revoke again to retry)", endErr)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// findAPIToken resolves the {id} path value: a token ID, a unique prefix of
// one, or the name of exactly one token (revoked tokens are not counted for
// a name). On failure it has answered.
func (a *API) findAPIToken(w http.ResponseWriter, r *http.Request) (store.APIToken, bool) {
	ref := r.PathValue("id")
	toks, err := a.Store.ListAPITokens(r.Context())
	if err != nil {
		a.internal(w, r, "look up API token", err)
		return store.APIToken{}, false
	}
	var byPrefix, byName []store.APIToken
	for _, t := range toks {
		switch {
		case t.ID == ref:
			return t, true
		case strings.HasPrefix(t.ID, ref) && ref != "":
			byPrefix = append(byPrefix, t)
		case t.Name == ref && t.RevokedAt.IsZero():
			byName = append(byName, t)
		}
	}
	found := byPrefix
	if len(found) == 0 {
		found = byName
	}
	switch len(found) {
	case 1:
		return found[0], true
	case 0:
		WriteError(w, http.StatusNotFound, "no API token with ID, ID prefix or name %q (revoked tokens are named by ID): patchbay api-tokens list shows them", ref)
		return store.APIToken{}, false
	}
	list := make([]string, len(found))
	for i, t := range found {
		list[i] = t.ID + " (" + t.Name + ")"
	}
	WriteError(w, http.StatusConflict, "%q names %s API tokens: %s: use an ID (or a unique prefix of one)", ref, count(len(found)), candidates(list))
	return store.APIToken{}, false
}

// endAccess calls EndAccess for tokens revoked or refused by a change to
// their user, logging (not failing the request on) an error: the tokens are
// already refused by the store, so only live sessions could outlast it.
func (a *API) endAccess(ctx context.Context, tokenIDs []string, reason string) {
	if len(tokenIDs) == 0 {
		return
	}
	if _, err := a.EndAccess(ctx, tokenIDs, reason); err != nil {
		a.Log.Error().Err(err).Strs("token_ids", tokenIDs).Str("reason", reason).
			Msg("end the access of revoked tokens: their live sessions may go on until they end")
	}
}
