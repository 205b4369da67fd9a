package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/authlimit"
	"github.com/patchbay/patchbay/server/sso"
	"github.com/patchbay/patchbay/server/store"
	"golang.org/x/oauth2"
)

// Single sign-on in the browser (OpenID Connect, authorization code flow
// with PKCE S256, state and nonce):
//
//	GET /console/oidc/start    -> sets the flow cookie, redirects to the provider
//	GET /console/oidc/callback <- the provider sends the browser back with a code
//
// The flow cookie __Host-patchbay_sso (Secure, HttpOnly, Path=/,
// SameSite=Lax so that it comes back on the provider's top-level redirect,
// 10 minutes) carries the state, the nonce and the PKCE verifier of this
// one sign-in. It needs no signature: only this origin can set or read a
// __Host- cookie, and a person who edits their own only breaks their own
// sign-in. The callback checks the state, redeems the code with the
// verifier, verifies the ID token and its nonce (sso.Provider.Exchange),
// lets the API admit the person and set their role (api.API.SSOSignIn),
// then either opens a console session (method "oidc", audited
// console.login after login.oidc) and lands on Fleet, or, for a CLI
// sign-in, redirects to the CLI's loopback listener with a one-time code.
//
// A CLI sign-in (patchbay login --sso) starts at
// /console/oidc/start?cli_port=P&cli_state=S&cli_challenge=C: the CLI
// listens on 127.0.0.1:P and the callback sends the browser to
// http://127.0.0.1:P/callback?code=pbh_...&state=S (RFC 8252, loopback
// redirect). The code works once, within 60 s, and only with the verifier
// whose S256 challenge is C, which only the CLI knows (POST /v1/login/sso).
// Failures go back the same way: to the console's login page
// (/#sso-error=MESSAGE) or to the CLI (?error=MESSAGE&state=S).

// SSOCookieName is the cookie of a sign-in in progress.
const SSOCookieName = "__Host-patchbay_sso"

// ssoFlowTTL bounds how long a person may take at the provider.
const ssoFlowTTL = 10 * time.Minute

// SSOLogin admits people the provider vouched for and mints their sessions
// (api.API implements it).
type SSOLogin interface {
	SSOSignIn(ctx context.Context, id sso.Identity, remote, via string) (store.User, map[string]string, error)
	MintSSOSession(ctx context.Context, u store.User, detail map[string]string) (string, store.APIToken, error)
	SSOHandoff(ctx context.Context, u store.User, challenge string, detail map[string]string) (string, error)
}

// ssoFlow is one sign-in in progress, kept in the flow cookie.
type ssoFlow struct {
	State        string `json:"s"`
	Nonce        string `json:"n"`
	Verifier     string `json:"v"`
	Redirect     string `json:"r"` // the redirect URI sent to the provider (the code exchange repeats it)
	CLIPort      int    `json:"p,omitempty"`
	CLIState     string `json:"cs,omitempty"`
	CLIChallenge string `json:"cc,omitempty"`
}

var (
	cliStateRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)
	cliChallengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
)

func randomString() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// handleLoginOptions tells the login page which ways in the relay offers.
func (c *Console) handleLoginOptions(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(apiv1.LoginOptions{Password: c.cfg.Password != nil, SSO: c.cfg.SSO != nil && c.cfg.SSOLogin != nil})
}

func (c *Console) ssoConfigured(w http.ResponseWriter, r *http.Request) bool {
	if c.cfg.SSO == nil || c.cfg.SSOLogin == nil {
		c.refuse(w, r, http.StatusNotFound, "single sign-on is not configured on this relay: an admin enables it with patchbay-server serve --oidc-issuer ... (see the README)")
		return false
	}
	return true
}

// handleSSOStart begins a sign-in at the provider.
func (c *Console) handleSSOStart(w http.ResponseWriter, r *http.Request) {
	if !c.ssoConfigured(w, r) {
		return
	}
	q := r.URL.Query()
	flow := &ssoFlow{State: randomString(), Nonce: randomString(), Verifier: oauth2.GenerateVerifier(),
		Redirect: c.cfg.SSO.RedirectURL(r.Host)}
	if q.Has("cli_port") || q.Has("cli_state") || q.Has("cli_challenge") {
		port, err := strconv.Atoi(q.Get("cli_port"))
		if err != nil || port < 1 || port > 65535 || !cliStateRE.MatchString(q.Get("cli_state")) || !cliChallengeRE.MatchString(q.Get("cli_challenge")) {
			c.refuse(w, r, http.StatusBadRequest, "single sign-on for the CLI: cli_port (1-65535), cli_state (16-128 base64url characters) and cli_challenge (an S256 challenge, 43 base64url characters) are all required: start it with patchbay login --sso")
			return
		}
		flow.CLIPort, flow.CLIState, flow.CLIChallenge = port, q.Get("cli_state"), q.Get("cli_challenge")
	}
	authURL, err := c.cfg.SSO.AuthURL(r.Context(), flow.Redirect, flow.State, flow.Nonce, flow.Verifier)
	if err != nil {
		c.cfg.Log.Error().Err(err).Msg("single sign-on: start")
		c.ssoFail(w, r, flow, "single sign-on: "+err.Error())
		return
	}
	b, err := json.Marshal(flow)
	if err != nil {
		c.internal(w, r, "start single sign-on", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SSOCookieName, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: int(ssoFlowTTL / time.Second)})
	http.Redirect(w, r, authURL, http.StatusFound)
}

// readFlow reads and clears the flow cookie; nil when absent or unreadable.
func (c *Console) readFlow(w http.ResponseWriter, r *http.Request) *ssoFlow {
	ck, err := r.Cookie(SSOCookieName)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: SSOCookieName, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
	b, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return nil
	}
	var f ssoFlow
	if json.Unmarshal(b, &f) != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" || f.Redirect == "" {
		return nil
	}
	return &f
}

// handleSSOCallback finishes a sign-in: the provider sent the browser back.
func (c *Console) handleSSOCallback(w http.ResponseWriter, r *http.Request) {
	if !c.ssoConfigured(w, r) {
		return
	}
	ctx, now, q := r.Context(), c.now(), r.URL.Query()
	src := authlimit.SourceOf(r.RemoteAddr)
	if c.cfg.Limiter != nil {
		if th := c.cfg.Limiter.Allow(src, "", now); th != nil {
			w.Header().Set("Retry-After", strconv.Itoa(int(th.RetryAfter.Seconds())))
			api.WriteError(w, http.StatusTooManyRequests, "%s", th.Error())
			return
		}
	}
	failed := func(why string) {
		if c.cfg.Limiter == nil || c.cfg.Limiter.Failed(src, "", now) {
			c.cfg.Log.Warn().Str("source", src).Msg("failed single sign-on: " + why)
		}
	}
	flow := c.readFlow(w, r)
	if flow == nil || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(flow.State)) != 1 {
		failed("no flow cookie or a state that is not the cookie's")
		// Not flow's CLI: a state that does not match proves nothing about it.
		c.ssoFail(w, r, nil, "single sign-on: this sign-in was not started in this browser, took longer than "+ssoFlowTTL.String()+
			", or the browser did not keep its cookie: start again")
		return
	}
	if e := q.Get("error"); e != "" {
		msg := "single sign-on: the identity provider refused: " + e
		if d := q.Get("error_description"); d != "" {
			msg += ": " + d
		}
		c.ssoFail(w, r, flow, msg)
		return
	}
	if q.Get("code") == "" {
		c.ssoFail(w, r, flow, "single sign-on: the identity provider sent no code: start again")
		return
	}
	id, err := c.cfg.SSO.Exchange(ctx, flow.Redirect, q.Get("code"), flow.Verifier, flow.Nonce)
	if err != nil {
		failed(err.Error())
		c.cfg.Log.Error().Err(err).Msg("single sign-on: callback")
		c.ssoFail(w, r, flow, "single sign-on: "+err.Error())
		return
	}
	via := "console"
	if flow.CLIPort != 0 {
		via = "cli"
	}
	u, detail, err := c.cfg.SSOLogin.SSOSignIn(ctx, id, r.RemoteAddr, via)
	var refusal *sso.Refusal
	if errors.As(err, &refusal) {
		c.ssoFail(w, r, flow, refusal.Message)
		return
	}
	if err != nil {
		c.cfg.Log.Error().Err(err).Msg("single sign-on: sign in")
		c.ssoFail(w, r, flow, "single sign-on failed on the relay; see its log")
		return
	}
	if c.cfg.Limiter != nil {
		c.cfg.Limiter.Succeeded(src, "", now)
	}
	if flow.CLIPort != 0 {
		code, err := c.cfg.SSOLogin.SSOHandoff(ctx, u, flow.CLIChallenge, detail)
		if err != nil {
			c.cfg.Log.Error().Err(err).Msg("single sign-on: hand off to the CLI")
			c.ssoFail(w, r, flow, "single sign-on failed on the relay; see its log")
			return
		}
		http.Redirect(w, r, loopbackURL(flow, url.Values{"code": {code}}), http.StatusFound)
		return
	}
	_, tok, err := c.cfg.SSOLogin.MintSSOSession(ctx, u, detail)
	if err == nil {
		_, _, err = c.openSession(w, r, tok, "oidc")
	}
	if err != nil {
		c.cfg.Log.Error().Err(err).Msg("single sign-on: open the console session")
		c.ssoFail(w, r, flow, "single sign-on failed on the relay; see its log")
		return
	}
	http.Redirect(w, r, "/#/fleet", http.StatusSeeOther)
}

// loopbackURL is the CLI's listener with the flow's state and v.
func loopbackURL(flow *ssoFlow, v url.Values) string {
	v.Set("state", flow.CLIState)
	return fmt.Sprintf("http://127.0.0.1:%d/callback?%s", flow.CLIPort, v.Encode())
}

// ssoFail sends the browser where the person sees msg: the CLI's listener
// for a CLI sign-in, else the console's login page.
func (c *Console) ssoFail(w http.ResponseWriter, r *http.Request, flow *ssoFlow, msg string) {
	c.cfg.Log.Info().Str("remote", r.RemoteAddr).Msg("single sign-on refused: " + msg)
	if flow != nil && flow.CLIPort != 0 {
		http.Redirect(w, r, loopbackURL(flow, url.Values{"error": {msg}}), http.StatusFound)
		return
	}
	http.Redirect(w, r, "/#sso-error="+url.PathEscape(msg), http.StatusSeeOther)
}
