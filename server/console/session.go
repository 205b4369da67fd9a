package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/authlimit"
	"github.com/patchbay/patchbay/server/store"
)

// CookieName is the session cookie. The __Host- prefix makes the browser
// insist on Secure, Path=/ and no Domain.
const CookieName = "__Host-patchbay_session"

// CSRFHeader carries the session's CSRF token on state-changing requests.
const CSRFHeader = "X-CSRF-Token"

// Secret prefixes, like the API's: leaked secrets are recognisable.
const (
	prefixLink    = "pbl_"
	prefixSession = "pbs_"
)

// touchEvery bounds how often a session's last use is written: idle expiry
// is precise to this (or to a quarter of a shorter idle timeout).
const touchEvery = time.Minute

// touchInterval is how long after its last recorded use a session's use is
// written again.
func (c *Console) touchInterval() time.Duration {
	return min(touchEvery, c.cfg.IdleTimeout/4)
}

// maxLoginBody bounds a login request.
const maxLoginBody = 4 << 10

// LoginRequest is the body of POST /console/login.
type LoginRequest struct {
	Method string `json:"method"`         // "link", "token" or "password"
	Secret string `json:"secret"`         // the link's secret, the API token or the password
	User   string `json:"user,omitempty"` // password: the user name
	Code   string `json:"code,omitempty"` // password: a TOTP or recovery code, when the user has TOTP
}

// SessionInfo answers POST /console/login and GET /console/session.
type SessionInfo struct {
	Name        string    `json:"name"`
	Role        string    `json:"role"`
	Method      string    `json:"method"`
	CSRF        string    `json:"csrf"`
	ExpiresAt   time.Time `json:"expires_at"`
	IdleSeconds int       `json:"idle_seconds"`
}

// A Method turns what a person presents at the login page into the API
// token whose identity and role the browser session gets: a one-time link,
// an API token, or a user's password and TOTP code. (Single sign-on is a
// redirect flow instead: oidc.go.)
type Method interface {
	Name() string
	// Check returns the token's hash, or a Refusal (the message the person
	// is shown; counted as a failed sign-in), a *Denied (answered with its
	// status, not counted), or another error when the relay failed.
	Check(ctx context.Context, in Attempt) (tokenHash string, err error)
}

// Attempt is what was presented at the login page.
type Attempt struct {
	Secret, User, Code string
	Remote             string // the client's address
}

// Denied is a login refused for a reason other than a wrong credential
// (a code is still needed; TOTP must be enrolled first): answered with
// Status and Code (apiv1.Error.Code), not counted as a failure.
type Denied struct {
	Status  int
	Code    string
	Message string
}

func (d *Denied) Error() string { return d.Message }

// PasswordLogin checks a user's password and code and mints their session
// token (api.API implements it).
type PasswordLogin interface {
	PasswordLogin(ctx context.Context, in api.PasswordAttempt) (secret string, tok store.APIToken, recoveryLeft int, err error)
}

// Refusal is a login refused for what was presented (answered 401).
type Refusal string

func (r Refusal) Error() string { return string(r) }

type linkMethod struct{ c *Console }

func (linkMethod) Name() string { return "link" }

func (m linkMethod) Check(ctx context.Context, in Attempt) (string, error) {
	l, err := m.c.cfg.Store.ConsumeConsoleLink(ctx, api.HashSecret(in.Secret), m.c.now())
	if errors.Is(err, store.ErrNotFound) {
		return "", Refusal(fmt.Sprintf("this login link is unknown, already used or expired (links last %v): run patchbay console again", m.c.cfg.LinkTTL))
	}
	if err != nil {
		return "", err
	}
	return l.TokenHash, nil
}

type tokenMethod struct{ c *Console }

func (tokenMethod) Name() string { return "token" }

func (m tokenMethod) Check(_ context.Context, in Attempt) (string, error) {
	return api.HashSecret(in.Secret), nil // looked up, like the link's token, by login
}

// passwordMethod logs a user in with their password and, when they have
// one, a TOTP or recovery code, through the same check as POST
// /v1/login/password; the session is then a 12-hour session token of the
// user's. A user who must still enrol TOTP is sent to the CLI.
type passwordMethod struct{ c *Console }

func (passwordMethod) Name() string { return "password" }

func (m passwordMethod) Check(ctx context.Context, in Attempt) (string, error) {
	_, tok, _, err := m.c.cfg.Password.PasswordLogin(ctx, api.PasswordAttempt{User: in.User, Password: in.Secret,
		Code: in.Code, Remote: in.Remote, Via: "console"})
	switch {
	case errors.Is(err, api.ErrLoginRefused):
		return "", Refusal(err.Error())
	case errors.Is(err, api.ErrCodeRequired):
		return "", &Denied{Status: http.StatusUnauthorized, Code: apiv1.ErrCodeTOTPRequired, Message: err.Error()}
	case errors.Is(err, api.ErrEnrolRequired):
		return "", &Denied{Status: http.StatusForbidden, Message: err.Error()}
	case err != nil:
		return "", err
	}
	return tok.Hash, nil
}

// CreateLink stores a one-time link for the API token with tokenHash.
func (c *Console) CreateLink(ctx context.Context, tokenHash string) (string, time.Time, error) {
	secret, hash := api.NewSecret(prefixLink)
	now := c.now()
	l := store.ConsoleLink{Hash: hash, TokenHash: tokenHash, CreatedAt: now, ExpiresAt: now.Add(c.cfg.LinkTTL)}
	if err := c.cfg.Store.CreateConsoleLink(ctx, l); err != nil {
		return "", time.Time{}, err
	}
	return "/login#" + secret, l.ExpiresAt, nil
}

// csrfToken derives the session's CSRF token from its secret: the page
// cannot compute it (the cookie is HttpOnly) and another origin cannot read it.
func csrfToken(sessionSecret string) string {
	sum := sha256.Sum256([]byte("patchbay-console-csrf\x00" + sessionSecret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// checkOrigin refuses a cookie-authenticated request that another origin
// made: its Origin, when present, must be this relay's; a state-changing
// request must have one; Sec-Fetch-Site, when present, must be same-origin
// (or none: the person typed the address).
func checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if !safeMethod(r.Method) {
			return errors.New("forbidden: a state-changing request without an Origin header")
		}
	} else if u, err := url.Parse(origin); err != nil || u.Scheme != "https" || u.Host != r.Host || u.Path != "" {
		return fmt.Errorf("forbidden: Origin %q is not this relay (https://%s)", origin, r.Host)
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return fmt.Errorf("forbidden: a %s request (Sec-Fetch-Site) to the console", site)
	}
	return nil
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// HasSession reports whether r carries a session cookie.
func (c *Console) HasSession(r *http.Request) bool {
	_, err := r.Cookie(CookieName)
	return err == nil
}

// Authenticate implements api.BrowserAuth.
func (c *Console) Authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	cs, _, ok := c.session(w, r, true)
	return cs.TokenHash, ok
}

// session checks r's cookie, Origin and (for a state-changing request, when
// csrf is set) CSRF header, and returns the live session and its secret.
// On failure it has answered 401 or 403.
func (c *Console) session(w http.ResponseWriter, r *http.Request, csrf bool) (store.ConsoleSession, string, bool) {
	var cs store.ConsoleSession
	if err := checkOrigin(r); err != nil {
		c.refuse(w, r, http.StatusForbidden, err.Error())
		return cs, "", false
	}
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		c.refuse(w, r, http.StatusUnauthorized, "not logged in to the console: open a link from patchbay console, or log in with an API token")
		return cs, "", false
	}
	ctx, now := r.Context(), c.now()
	hash := api.HashSecret(ck.Value)
	cs, err = c.cfg.Store.GetConsoleSession(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		c.refuse(w, r, http.StatusUnauthorized, "console session unknown or ended: log in again")
		return cs, "", false
	}
	if err != nil {
		c.internal(w, r, "look up console session", err)
		return cs, "", false
	}
	var expired string
	switch {
	case !now.Before(cs.ExpiresAt):
		expired = fmt.Sprintf("console session expired (sessions last %v): log in again", c.cfg.MaxAge)
	case now.Sub(cs.LastUsedAt) >= c.cfg.IdleTimeout:
		expired = fmt.Sprintf("console session expired after %v without use: log in again", c.cfg.IdleTimeout)
	}
	if expired != "" {
		if err := c.cfg.Store.DeleteConsoleSession(ctx, hash); err != nil && !errors.Is(err, store.ErrNotFound) {
			c.cfg.Log.Warn().Err(err).Msg("delete expired console session")
		}
		c.refuse(w, r, http.StatusUnauthorized, expired)
		return cs, "", false
	}
	if csrf && !safeMethod(r.Method) {
		want := csrfToken(ck.Value)
		if got := r.Header.Get(CSRFHeader); subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			c.refuse(w, r, http.StatusForbidden, "forbidden: missing or wrong CSRF token ("+CSRFHeader+" header): reload the console")
			return cs, "", false
		}
	}
	if now.Sub(cs.LastUsedAt) >= c.touchInterval() {
		if err := c.cfg.Store.TouchConsoleSession(ctx, hash, now); err != nil {
			c.cfg.Log.Warn().Err(err).Msg("record console session use")
		}
	}
	return cs, ck.Value, true
}

// refuse answers status with {"error": msg} and logs it at info level: a
// refused cookie or Origin is worth seeing in the relay's log.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.cfg.Log.Info().Str("path", r.URL.Path).Str("method", r.Method).Int("status", status).
		Str("remote", r.RemoteAddr).Msg("console request refused: " + msg)
	api.WriteError(w, status, "%s", msg)
}

func (c *Console) internal(w http.ResponseWriter, r *http.Request, step string, err error) {
	c.cfg.Log.Error().Err(err).Str("path", r.URL.Path).Msg(step)
	api.WriteError(w, http.StatusInternalServerError, "%s failed on the relay; see its log", step)
}

// handleLogin exchanges a one-time link's secret or an API token for a
// browser session.
func (c *Console) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := checkOrigin(r); err != nil {
		c.refuse(w, r, http.StatusForbidden, err.Error())
		return
	}
	var req LoginRequest
	body := http.MaxBytesReader(w, r.Body, maxLoginBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		c.refuse(w, r, http.StatusBadRequest, "login request: "+err.Error())
		return
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		c.refuse(w, r, http.StatusBadRequest, "login request: "+err.Error())
		return
	}
	m, ok := c.methods[req.Method]
	if !ok || req.Secret == "" {
		c.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("login request: method %q with a secret: want link, token or password", req.Method))
		return
	}
	// Failures are counted per source, and for passwords per user name too.
	user := ""
	if m.Name() == "password" {
		if user = api.NormUserName(req.User); user == "" {
			c.refuse(w, r, http.StatusBadRequest, "login request: a password needs a user name")
			return
		}
	}
	ctx, now := r.Context(), c.now()
	src := authlimit.SourceOf(r.RemoteAddr)
	// A password's check is slow (it is hashed): its attempt holds a place
	// in the limits until it ends (authlimit.Begin), so requests in flight
	// cannot all pass. Links and tokens are checked at once (Allow).
	var ticket *authlimit.Ticket
	if c.cfg.Limiter != nil {
		var th *authlimit.Throttled
		if user != "" {
			ticket, th = c.cfg.Limiter.Begin(src, user, now)
		} else {
			th = c.cfg.Limiter.Allow(src, user, now)
		}
		if th != nil {
			w.Header().Set("Retry-After", strconv.Itoa(int(th.RetryAfter.Seconds())))
			api.WriteError(w, http.StatusTooManyRequests, "%s", th.Error()) // counted, not logged: a flood stays out of the log
			return
		}
	}
	// A failed login is counted (the relay audits the counts once a minute)
	// and logged once per source and period, not each time.
	failed := func() {
		first := false
		switch {
		case c.cfg.Limiter == nil:
			c.cfg.Log.Info().Str("source", src).Str("method", m.Name()).Msg("failed console login")
		case ticket != nil:
			first = c.cfg.Limiter.Fail(ticket, now)
		default:
			first = c.cfg.Limiter.Failed(src, user, now)
		}
		if first {
			c.cfg.Log.Warn().Str("source", src).Str("user", user).Str("method", m.Name()).
				Msg("failed console login (further failures from this source are counted in the audit log, not logged)")
		}
	}
	// Every other end of a begun attempt gives its place back (a success
	// below turns it into a known source instead).
	defer func() {
		if c.cfg.Limiter != nil {
			c.cfg.Limiter.Release(ticket, now)
		}
	}()
	tokenHash, err := m.Check(ctx, Attempt{Secret: req.Secret, User: req.User, Code: req.Code, Remote: r.RemoteAddr})
	var refusal Refusal
	if errors.As(err, &refusal) {
		failed()
		api.WriteError(w, http.StatusUnauthorized, "%s", string(refusal))
		return
	}
	var denied *Denied
	if errors.As(err, &denied) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(denied.Status)
		json.NewEncoder(w).Encode(apiv1.Error{Error: denied.Message, Code: denied.Code})
		return
	}
	if err != nil {
		c.internal(w, r, "log in", err)
		return
	}
	tok, err := c.cfg.Store.LookupAPIToken(ctx, tokenHash, now)
	if errors.Is(err, store.ErrNotFound) {
		failed()
		api.WriteError(w, http.StatusUnauthorized, "API token unknown, expired or revoked: ask an admin for a new one")
		return
	}
	if err != nil {
		c.internal(w, r, "log in", err)
		return
	}
	if c.cfg.Limiter != nil {
		if ticket != nil {
			c.cfg.Limiter.Succeed(ticket, now)
		} else {
			c.cfg.Limiter.Succeeded(src, user, now)
		}
	}
	cs, secret, err := c.openSession(w, r, tok, m.Name())
	if err != nil {
		c.internal(w, r, "log in", err)
		return
	}
	c.writeInfo(w, http.StatusOK, tok, cs, secret)
}

// openSession opens a browser session for tok (logged in by method),
// audits console.login and sets the session cookie.
func (c *Console) openSession(w http.ResponseWriter, r *http.Request, tok store.APIToken, method string) (store.ConsoleSession, string, error) {
	ctx, now := r.Context(), c.now()
	secret, hash := api.NewSecret(prefixSession)
	cs := store.ConsoleSession{Hash: hash, ID: store.NewID(), TokenHash: tok.Hash, Method: method,
		RemoteAddr: r.RemoteAddr, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(c.cfg.MaxAge)}
	if err := c.cfg.Store.CreateConsoleSession(ctx, cs); err != nil {
		return cs, "", err
	}
	if err := c.cfg.Audit(ctx, api.Actor(tok), "console.login", cs.ID, map[string]string{
		"method": method, "remote": r.RemoteAddr, "user_agent": truncate(r.UserAgent(), 200)}); err != nil {
		c.cfg.Store.DeleteConsoleSession(ctx, hash) // no unaudited session
		return cs, "", err
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: secret, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(c.cfg.MaxAge / time.Second)})
	return cs, secret, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// handleSession tells the page who is logged in and its CSRF token.
func (c *Console) handleSession(w http.ResponseWriter, r *http.Request) {
	cs, secret, ok := c.session(w, r, true)
	if !ok {
		return
	}
	tok, ok := c.token(w, r, cs)
	if ok {
		c.writeInfo(w, http.StatusOK, tok, cs, secret)
	}
}

// token looks up the session's API token; on failure it has answered.
func (c *Console) token(w http.ResponseWriter, r *http.Request, cs store.ConsoleSession) (store.APIToken, bool) {
	tok, err := c.cfg.Store.LookupAPIToken(r.Context(), cs.TokenHash, c.now())
	if errors.Is(err, store.ErrNotFound) {
		c.refuse(w, r, http.StatusUnauthorized, "the API token of this console session is expired or revoked: log in again")
		return tok, false
	}
	if err != nil {
		c.internal(w, r, "look up API token", err)
		return tok, false
	}
	return tok, true
}

func (c *Console) writeInfo(w http.ResponseWriter, status int, tok store.APIToken, cs store.ConsoleSession, secret string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(SessionInfo{Name: tok.Name, Role: tok.Role, Method: cs.Method, CSRF: csrfToken(secret),
		ExpiresAt: cs.ExpiresAt, IdleSeconds: int(c.cfg.IdleTimeout / time.Second)})
}

// handleLogout ends the session (CSRF required) and audits it.
func (c *Console) handleLogout(w http.ResponseWriter, r *http.Request) {
	cs, _, ok := c.session(w, r, true)
	if !ok {
		return
	}
	ctx := r.Context()
	actor := "console session " + cs.ID
	if tok, err := c.cfg.Store.LookupAPIToken(ctx, cs.TokenHash, c.now()); err == nil {
		actor = api.Actor(tok)
	}
	if err := c.cfg.Store.DeleteConsoleSession(ctx, cs.Hash); err != nil && !errors.Is(err, store.ErrNotFound) {
		c.internal(w, r, "log out", err)
		return
	}
	if err := c.cfg.Audit(ctx, actor, "console.logout", cs.ID, map[string]string{"remote": r.RemoteAddr}); err != nil {
		c.internal(w, r, "log out", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}
