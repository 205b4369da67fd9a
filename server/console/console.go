// Package console is the relay's web console: a small single-page front end
// (plain ES modules and one stylesheet, embedded in patchbay-server) served
// at / on the relay's HTTPS listener, and the browser sessions it runs on.
//
// The console has no API of its own for data: the page calls the same REST
// API as the CLI (/v1/...), with a session cookie in place of a bearer
// token. api.API's auth asks this package (through api.BrowserAuth) which
// API token a session stands for, then decides roles exactly as for a
// bearer token. What this package adds:
//
//   - Getting in (POST /console/login): a one-time link from `patchbay
//     console` (secret in the URL fragment, valid LinkTTL, stored hashed,
//     usable once), an API token typed into the form, or a user's name,
//     password and TOTP code (checked by api.API.PasswordLogin, throttled
//     per source and user name like POST /v1/login/password). Each login
//     method is a Method. Single sign-on (OpenID Connect) is a redirect
//     flow instead (oidc.go): its sessions have method "oidc".
//   - Sessions: cookie __Host-patchbay_session (Secure, HttpOnly,
//     SameSite=Strict, Path=/), stored hashed in the store (so a relay restart
//     or another relay keeps it), ended after IdleTimeout without a request
//     or MaxAge after login, at logout, or when its API token is revoked.
//   - CSRF: a synchronizer token derived from the session secret, handed to
//     the page by GET /console/session and POST /console/login, required in
//     the X-CSRF-Token header of every request other than GET and HEAD.
//   - Origin: a request with a session cookie whose Origin (or
//     Sec-Fetch-Site) is not the relay's own is refused with 403; a
//     state-changing request must carry an Origin.
//   - Headers: a Content-Security-Policy with no inline script or style and
//     nothing from another origin, no framing, no referrer.
//   - Live fleet changes: GET /console/events is a server-sent event stream
//     of agents coming and going (see Events).
//
// Logins and logouts are audited (console.login, console.logout; single
// sign-on adds login.oidc, login.oidc.refused, user.create and user.role).
package console

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"time"

	"github.com/patchbay/patchbay/server/authlimit"
	"github.com/patchbay/patchbay/server/sso"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

//go:embed web
var webFS embed.FS

// Defaults for Config fields left zero.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxAge      = 12 * time.Hour
	DefaultLinkTTL     = 60 * time.Second
)

// Config configures a Console.
type Config struct {
	Store *store.Store
	// Audit appends a record to the relay's audit chain.
	Audit func(ctx context.Context, actor, action, target string, detail map[string]string) error
	// Online reports whether an agent is connected (the hub).
	Online func(id string) bool
	// Limiter counts failed logins and throttles their sources (nil: none).
	Limiter *authlimit.Limiter
	// Password checks user logins (nil: the login page takes no passwords).
	Password PasswordLogin
	// SSO is the OpenID provider and SSOLogin admits the people it vouches
	// for (either nil: no single sign-on; see oidc.go).
	SSO      *sso.Provider
	SSOLogin SSOLogin
	Log      zerolog.Logger

	IdleTimeout time.Duration // a session unused this long ends
	MaxAge      time.Duration // a session ends this long after login, used or not
	LinkTTL     time.Duration // a one-time link must be used within this
	// Now returns the current time (default time.Now); tests may move it.
	Now func() time.Time
}

// Console serves the web console. Its methods are safe for concurrent use.
type Console struct {
	cfg     Config
	methods map[string]Method
	events  *Events
	static  http.Handler
	index   []byte
}

// New returns a console; Register adds its routes.
func New(cfg Config) *Console {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.LinkTTL <= 0 {
		cfg.LinkTTL = DefaultLinkTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	c := &Console{cfg: cfg, events: newEvents(), static: http.FileServerFS(sub), index: index}
	c.methods = map[string]Method{}
	for _, m := range []Method{linkMethod{c}, tokenMethod{c}} {
		c.methods[m.Name()] = m
	}
	if cfg.Password != nil {
		c.methods["password"] = passwordMethod{c}
	}
	return c
}

func (c *Console) now() time.Time { return c.cfg.Now().UTC() }

// Events is where the relay reports agents coming and going.
func (c *Console) Events() *Events { return c.events }

// Register adds the console's routes to mux. Event streams end when
// streams ends (the relay cancels it when it starts shutting down, so that
// open streams do not hold up a graceful shutdown).
func (c *Console) Register(mux *http.ServeMux, streams context.Context) {
	page := c.headers(http.HandlerFunc(c.handleIndex))
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /login", page)
	mux.Handle("GET /assets/", c.headers(http.StripPrefix("/assets/", c.static)))
	mux.Handle("POST /console/login", c.headers(http.HandlerFunc(c.handleLogin)))
	mux.Handle("POST /console/logout", c.headers(http.HandlerFunc(c.handleLogout)))
	mux.Handle("GET /console/session", c.headers(http.HandlerFunc(c.handleSession)))
	mux.Handle("GET /console/login-options", c.headers(http.HandlerFunc(c.handleLoginOptions)))
	mux.Handle("GET /console/oidc/start", c.headers(http.HandlerFunc(c.handleSSOStart)))
	mux.Handle("GET "+sso.CallbackPath, c.headers(http.HandlerFunc(c.handleSSOCallback)))
	mux.Handle("GET /console/events", c.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.handleEvents(streams, w, r)
	})))
}

// CSP allows this origin's scripts, styles, images and connections, and
// nothing inline. 'wasm-unsafe-eval' lets the page compile the terminal's
// SSH client (WebAssembly from this origin); it allows no JavaScript eval.
// The recording player (asciinema-player) needs nothing more: its terminal
// emulator is WebAssembly it compiles from bytes it carries (the same
// 'wasm-unsafe-eval'), it styles elements through the CSSOM (allowed;
// only style attributes and elements are not), it starts no worker, and it
// gets the recording as data (e2e checks that no violation is reported).
const CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// headers sets the security headers of every console response.
func (c *Console) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func (c *Console) handleIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(c.index)
}
