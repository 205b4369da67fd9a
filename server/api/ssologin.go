package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/sso"
	"github.com/patchbay/patchbay/server/store"
)

// Single sign-on (OpenID Connect), the API's part: the web console runs the
// browser flow and verifies the provider's ID token (server/sso), then
// calls SSOSignIn with the verified identity. SSOSignIn decides (allowed
// domains and groups, the role map), and:
//   - a first sign-in creates the user (source oidc, no password), named by
//     their email (else preferred_username, else oidc-<hash of the subject>),
//     linked to the provider's issuer and subject: later sign-ins find the
//     user by that link, never by name or email (audited user.create, actor
//     "oidc ISSUER");
//   - a later sign-in sets the user's role from their current groups
//     (audited user.role when it changes; a lower role applies at once to
//     their live sessions, whose role never outranks the user's);
//   - a refused sign-in of a known user (a group was removed, the domain
//     no longer admitted) revokes every token of the user, so their live
//     sessions end too (audited login.oidc.refused with the groups seen).
//
// The console then opens a browser session (MintSSOSession, audited
// login.oidc); the CLI (patchbay login --sso) gets a one-time code through
// its loopback listener (SSOHandoff) and redeems it with its PKCE verifier
// at POST /v1/login/sso for the same 12-hour session token a password
// login gives.

// SSOHandoffTTL is how long the CLI has to redeem its one-time code.
const SSOHandoffTTL = 60 * time.Second

// PrefixHandoff marks the one-time codes handed to the CLI.
const PrefixHandoff = "pbh_"

// ssoActor is how the provider appears in the audit log.
func ssoActor(issuer string) string { return "oidc " + issuer }

// ssoDetail is what an audit record of a sign-in says about the identity.
func ssoDetail(id sso.Identity, remote, via string) map[string]string {
	return map[string]string{"issuer": id.Issuer, "subject": id.Subject, "email": id.Email,
		"groups": strings.Join(id.Groups, ","), "remote": remote, "via": via}
}

// ssoUserName is the name a first sign-in gives the user.
func ssoUserName(id sso.Identity) string {
	for _, n := range []string{id.Email, id.PreferredUsername} {
		if n = NormUserName(n); validUserName(n) {
			return n
		}
	}
	sum := sha256.Sum256([]byte(id.Issuer + "\x00" + id.Subject))
	return "oidc-" + hex.EncodeToString(sum[:6])
}

// SSOSignIn admits or refuses a verified identity (see above) and returns
// the user, created or updated, and the audit detail of the sign-in. A
// refusal is an *sso.Refusal whose message the person is shown.
func (a *API) SSOSignIn(ctx context.Context, id sso.Identity, remote, via string) (store.User, map[string]string, error) {
	detail := ssoDetail(id, remote, via)
	if a.SSO == nil {
		return store.User{}, detail, errors.New("single sign-on is not configured on this relay")
	}
	now := a.now()
	u, err := a.Store.OIDCUser(ctx, id.Issuer, id.Subject)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return u, detail, err
	}
	role, err := a.SSO.Decide(id)
	if err == nil && known && !u.DisabledAt.IsZero() {
		err = &sso.Refusal{Reason: "disabled", Message: fmt.Sprintf("sign-in refused: your Patchbay account %s is disabled: ask an admin (patchbay users enable %s)", u.Name, u.Name)}
	}
	var refusal *sso.Refusal
	if errors.As(err, &refusal) {
		return u, detail, a.ssoRefused(ctx, id, u, known, refusal, detail)
	}
	if err != nil {
		return u, detail, err
	}
	sites, err := a.ssoSites(ctx, id, role)
	if errors.As(err, &refusal) {
		return u, detail, a.ssoRefused(ctx, id, u, known, refusal, detail)
	}
	if err != nil {
		return u, detail, err
	}
	if !known {
		if sites == nil {
			sites = []string{store.DefaultSiteID}
		}
		u = store.User{ID: store.NewID(), Name: ssoUserName(id), Role: role, Source: store.SourceOIDC, CreatedAt: now, UpdatedAt: now, Sites: sites}
		err := a.Store.CreateOIDCUser(ctx, u, store.OIDCIdentity{Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, Groups: id.Groups})
		if errors.Is(err, store.ErrUserExists) {
			r := &sso.Refusal{Reason: "name", Message: fmt.Sprintf("sign-in refused: a Patchbay user named %s exists and is not linked to this identity: an admin can delete it (patchbay users delete %s) so that your next sign-in creates it from single sign-on", u.Name, u.Name)}
			return u, detail, a.ssoRefused(ctx, id, u, false, r, detail)
		}
		if err != nil {
			return u, detail, err
		}
		if err := a.audit(ctx, ssoActor(id.Issuer), "user.create", u.ID, map[string]string{"name": u.Name, "role": role,
			"source": store.SourceOIDC, "subject": id.Subject, "email": id.Email, "groups": detail["groups"]}); err != nil {
			return u, detail, err
		}
		return u, detail, nil
	}
	if role != u.Role {
		if err := a.Store.SetUserRole(ctx, u.ID, role, now); err != nil {
			return u, detail, err
		}
		if err := a.audit(ctx, ssoActor(id.Issuer), "user.role", u.ID, map[string]string{"name": u.Name, "from": u.Role, "to": role,
			"groups": detail["groups"], "why": "the groups at the identity provider changed"}); err != nil {
			return u, detail, err
		}
		u.Role = role
	}
	if sites != nil {
		old, err := a.Store.UserSites(ctx, u.ID)
		if err != nil {
			return u, detail, err
		}
		if !slices.Equal(old, sites) {
			if err := a.Store.SetUserSites(ctx, u.ID, sites); err != nil {
				return u, detail, err
			}
			if err := a.audit(ctx, ssoActor(id.Issuer), "user.sites", u.ID, map[string]string{"name": u.Name,
				"from": strings.Join(old, ","), "to": strings.Join(sites, ","), "groups": detail["groups"],
				"why": "the groups at the identity provider changed"}); err != nil {
				return u, detail, err
			}
		}
	}
	if err := a.Store.RecordOIDCLogin(ctx, id.Issuer, id.Subject, id.Email, id.Groups, now); err != nil && !errors.Is(err, store.ErrNotFound) {
		return u, detail, err
	}
	return u, detail, nil
}

// ssoSites resolves the sites the person's groups map to (--oidc-site-map),
// sorted; nil when the provider does not manage sites. A site map entry
// naming no site is skipped (and logged); a non-admin whose groups reach no
// site is refused.
func (a *API) ssoSites(ctx context.Context, id sso.Identity, role string) ([]string, error) {
	refs, managed := a.SSO.SitesOf(id)
	if !managed {
		return nil, nil
	}
	sites := []string{}
	for _, ref := range refs {
		g, err := a.resolveGrants(ctx, []string{ref})
		if errors.Is(err, errNoSite) || errors.Is(err, errAmbiguousSite) {
			a.Log.Warn().Err(err).Str("site", ref).Msg("--oidc-site-map names a site that does not resolve: fix the map or create the site")
			continue
		}
		if err != nil {
			return nil, err
		}
		sites = append(sites, g...)
	}
	if slices.Contains(sites, store.AllSites) {
		return []string{store.AllSites}, nil
	}
	slices.Sort(sites)
	sites = slices.Compact(sites)
	if len(sites) == 0 && role != apiv1.RoleAdmin {
		seen := strings.Join(id.Groups, ", ")
		if seen == "" {
			seen = "none"
		}
		return nil, &sso.Refusal{Reason: "site", Message: fmt.Sprintf("sign-in refused: none of your groups maps to a site you may support (your groups: %s): ask an admin to add you to a group of --oidc-site-map", seen)}
	}
	return sites, nil
}

// ssoRefused audits a refused sign-in; a known user loses every token.
func (a *API) ssoRefused(ctx context.Context, id sso.Identity, u store.User, known bool, r *sso.Refusal, detail map[string]string) error {
	d := map[string]string{"reason": r.Reason, "message": r.Message}
	for k, v := range detail {
		d[k] = v
	}
	target := ""
	if known {
		target = u.ID
		d["user"] = u.Name
		ids, err := a.Store.RevokeUserTokens(ctx, u.ID, a.now())
		if err != nil {
			return err
		}
		a.endAccess(ctx, ids, "access revoked: the identity provider no longer admits "+u.Name+" ("+r.Reason+")")
		d["tokens_revoked"] = strconv.Itoa(len(ids))
	}
	who := id.Email
	if who == "" {
		who = "subject " + id.Subject
	}
	a.Log.Info().Str("issuer", id.Issuer).Str("subject", id.Subject).Str("email", id.Email).Str("reason", r.Reason).
		Strs("groups", id.Groups).Msg("single sign-on refused: " + r.Message)
	if err := a.audit(ctx, ssoActor(id.Issuer)+": "+who, "login.oidc.refused", target, d); err != nil {
		return err
	}
	return r
}

// MintSSOSession mints a session token (SessionTTL, the user's role) for a
// user SSOSignIn admitted, and audits login.oidc with detail.
func (a *API) MintSSOSession(ctx context.Context, u store.User, detail map[string]string) (string, store.APIToken, error) {
	now := a.now()
	secret, hash := NewSecret(PrefixAPI)
	tok := store.APIToken{ID: store.NewID(), Hash: hash, Role: u.Role, Name: u.Name, CreatedAt: now,
		ExpiresAt: now.Add(SessionTTL), UserID: u.ID, Kind: store.KindSession, UserName: u.Name}
	if err := a.Store.CreateAPIToken(ctx, tok); err != nil {
		return "", tok, err
	}
	d := map[string]string{"token": tok.ID, "expires_at": tok.ExpiresAt.Format(time.RFC3339)}
	for k, v := range detail {
		d[k] = v
	}
	if err := a.audit(ctx, Actor(tok), "login.oidc", u.ID, d); err != nil {
		a.Store.RevokeAPIToken(ctx, tok.ID, now) // no unaudited session
		return "", tok, err
	}
	return secret, tok, nil
}

// SSOHandoff stores a one-time code (SSOHandoffTTL) that the CLI redeems,
// with the verifier whose S256 challenge is given, for a session of u.
func (a *API) SSOHandoff(ctx context.Context, u store.User, challenge string, detail map[string]string) (string, error) {
	code, hash := NewSecret(PrefixHandoff)
	now := a.now()
	err := a.Store.CreateSSOHandoff(ctx, store.SSOHandoff{Hash: hash, UserID: u.ID, Challenge: challenge, Detail: detail,
		CreatedAt: now, ExpiresAt: now.Add(SSOHandoffTTL)})
	return code, err
}

// S256 is the PKCE challenge of verifier (RFC 7636): base64url SHA-256.
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// handleSSOLogin is POST /v1/login/sso (no token needed): the CLI redeems
// the one-time code its loopback listener received, with its verifier.
func (a *API) handleSSOLogin(w http.ResponseWriter, r *http.Request) {
	var req apiv1.SSOLoginRequest
	if !decode(w, r, &req) {
		return
	}
	if a.throttled(w, r, "") {
		return
	}
	ctx := r.Context()
	h, err := a.Store.ConsumeSSOHandoff(ctx, HashSecret(req.Code), a.now())
	if errors.Is(err, store.ErrNotFound) {
		a.authFailed(r, "", "sso code")
		WriteError(w, http.StatusUnauthorized, "sign-in code unknown, used or expired (it works once, within %v): run patchbay login --sso again", SSOHandoffTTL)
		return
	}
	if err != nil {
		a.internal(w, r, "log in", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(S256(req.Verifier)), []byte(h.Challenge)) != 1 {
		a.authFailed(r, "", "sso verifier")
		WriteError(w, http.StatusUnauthorized, "sign-in code refused: the verifier does not match the sign-in this code was issued to: run patchbay login --sso again")
		return
	}
	u, err := a.Store.GetUser(ctx, h.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.DisabledAt.IsZero()) {
		WriteError(w, http.StatusUnauthorized, "sign-in refused: the account was deleted or disabled since the sign-in: ask an admin")
		return
	}
	if err != nil {
		a.internal(w, r, "log in", err)
		return
	}
	detail := h.Detail
	if detail == nil {
		detail = map[string]string{}
	}
	detail["via"], detail["redeemed_from"] = "cli", r.RemoteAddr
	secret, tok, err := a.MintSSOSession(ctx, u, detail)
	if err != nil {
		a.internal(w, r, "log in", err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.PasswordLogin{Whoami: a.whoami(ctx, tok), Token: secret, ExpiresAt: tok.ExpiresAt})
}
