package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/console"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// clock is the relay's time in these tests, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time         { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration)    { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *clock) set(t time.Time)        { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) since(t0 time.Time) any { return c.now().Sub(t0) }

// relay is the API and the console over a real store, behind a real TLS
// server, as the relay wires them.
type relay struct {
	t      *testing.T
	srv    *httptest.Server
	st     *store.Store
	con    *console.Console
	clock  *clock
	tokens map[string]string // role -> API token
}

func newRelay(t *testing.T) *relay {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &relay{t: t, st: st, clock: &clock{t: time.Now().UTC()}, tokens: map[string]string{}}
	a := &api.API{Store: st, Log: zerolog.Nop(), Now: r.clock.now}
	r.con = console.New(console.Config{Store: st, Audit: a.Audit, Online: func(string) bool { return false },
		Password: a, Log: zerolog.Nop(), Now: r.clock.now})
	a.Browser = r.con
	streams, stop := context.WithCancel(ctx)
	mux := http.NewServeMux()
	a.Register(mux)
	r.con.Register(mux, streams)
	r.srv = httptest.NewTLSServer(mux)
	t.Cleanup(func() { stop(); r.srv.Close() })
	for _, role := range []string{"viewer", "admin"} {
		secret, _, err := api.MintAPIToken(ctx, st, "test", role, role+"-user", 0, r.clock.now())
		if err != nil {
			t.Fatal(err)
		}
		r.tokens[role] = secret
	}
	return r
}

func (r *relay) origin() string { return r.srv.URL }

type answer struct {
	status int
	body   string
	cookie string
}

// do sends a request; hdr are header name/value pairs.
func (r *relay) do(method, path, cookie, body string, hdr ...string) answer {
	r.t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: console.CookieName, Value: cookie})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: string(b)}
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			a.cookie = c.Value
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
				r.t.Errorf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/", c)
			}
		}
	}
	return a
}

// login logs in with method and secret and returns the cookie and CSRF token.
func (r *relay) login(method, secret string) (cookie, csrf string) {
	r.t.Helper()
	body, _ := json.Marshal(console.LoginRequest{Method: method, Secret: secret})
	a := r.do("POST", "/console/login", "", string(body), "Origin", r.origin())
	if a.status != 200 || a.cookie == "" {
		r.t.Fatalf("login %s: %d %s", method, a.status, a.body)
	}
	var info console.SessionInfo
	if err := json.Unmarshal([]byte(a.body), &info); err != nil || info.CSRF == "" {
		r.t.Fatalf("login answer %s: %v", a.body, err)
	}
	return a.cookie, info.CSRF
}

func (r *relay) link(role string) string {
	r.t.Helper()
	a := r.do("POST", "/v1/console/links", "", "", "Authorization", "Bearer "+r.tokens[role])
	if a.status != 201 {
		r.t.Fatalf("create link: %d %s", a.status, a.body)
	}
	var l struct{ Path string }
	json.Unmarshal([]byte(a.body), &l)
	secret, ok := strings.CutPrefix(l.Path, "/login#")
	if !ok {
		r.t.Fatalf("link path %q", l.Path)
	}
	return secret
}

func want(t *testing.T, what string, a answer, status int, text string) {
	t.Helper()
	if a.status != status || !strings.Contains(a.body, text) {
		t.Errorf("%s: %d %s, want %d containing %q", what, a.status, a.body, status, text)
	}
}

func TestLinkIsOneTimeAndShortLived(t *testing.T) {
	r := newRelay(t)
	secret := r.link("admin")
	cookie, _ := r.login("link", secret)
	want(t, "an admin route through the session", r.do("GET", "/v1/api-tokens", cookie, ""), 200, "admin-user")
	body, _ := json.Marshal(console.LoginRequest{Method: "link", Secret: secret})
	want(t, "the same link again", r.do("POST", "/console/login", "", string(body), "Origin", r.origin()), 401, "already used")

	late := r.link("viewer")
	r.clock.add(console.DefaultLinkTTL)
	body, _ = json.Marshal(console.LoginRequest{Method: "link", Secret: late})
	want(t, "a link after its TTL", r.do("POST", "/console/login", "", string(body), "Origin", r.origin()), 401, "expired")
	want(t, "a made-up link", r.do("POST", "/console/login", "", `{"method":"link","secret":"pbl_x"}`, "Origin", r.origin()), 401, "unknown")
	want(t, "a login from another origin", r.do("POST", "/console/login", "", `{"method":"token","secret":"x"}`, "Origin", "https://evil.example"), 403, "Origin")
	want(t, "a login without Origin", r.do("POST", "/console/login", "", `{"method":"token","secret":"x"}`), 403, "Origin")
	want(t, "an unknown method", r.do("POST", "/console/login", "", `{"method":"oidc","secret":"x"}`, "Origin", r.origin()), 400, "want link, token or password")
	want(t, "a wrong token", r.do("POST", "/console/login", "", `{"method":"token","secret":"pbt_nope"}`, "Origin", r.origin()), 401, "unknown, expired or revoked")
	want(t, "an oversized login", r.do("POST", "/console/login", "", `{"method":"token","secret":"`+strings.Repeat("a", 8000)+`"}`, "Origin", r.origin()), 400, "login request")
}

func TestSessionExpiry(t *testing.T) {
	r := newRelay(t)
	t0 := r.clock.now()

	// Idle: used within the idle limit it lives on; unused past it, it ends.
	cookie, _ := r.login("token", r.tokens["viewer"])
	for range 3 {
		r.clock.add(console.DefaultIdleTimeout - time.Minute)
		want(t, "a session used in time", r.do("GET", "/v1/agents", cookie, ""), 200, "[")
	}
	r.clock.add(console.DefaultIdleTimeout)
	want(t, "an idle session", r.do("GET", "/v1/agents", cookie, ""), 401, "without use")
	want(t, "the idle session again", r.do("GET", "/v1/agents", cookie, ""), 401, "unknown or ended")

	// Absolute: used every 20 minutes, it still ends MaxAge after login.
	r.clock.set(t0)
	cookie, _ = r.login("token", r.tokens["viewer"])
	for r.clock.now().Sub(t0) < console.DefaultMaxAge-20*time.Minute {
		r.clock.add(20 * time.Minute)
		if a := r.do("GET", "/console/session", cookie, ""); a.status != 200 {
			t.Fatalf("session at %v: %d %s", r.clock.since(t0), a.status, a.body)
		}
	}
	r.clock.add(20 * time.Minute)
	want(t, "a session past its absolute expiry", r.do("GET", "/v1/agents", cookie, ""), 401, "sessions last")
}

func TestCSRFAndOrigin(t *testing.T) {
	r := newRelay(t)
	cookie, csrf := r.login("token", r.tokens["admin"])
	create := `{"role":"viewer","name":"from-console"}`
	want(t, "POST without CSRF token", r.do("POST", "/v1/api-tokens", cookie, create, "Origin", r.origin()), 403, "CSRF")
	want(t, "POST with another session's CSRF token", r.do("POST", "/v1/api-tokens", cookie, create, "Origin", r.origin(),
		console.CSRFHeader, csrf[1:]+"A"), 403, "CSRF")
	want(t, "POST without Origin", r.do("POST", "/v1/api-tokens", cookie, create, console.CSRFHeader, csrf), 403, "Origin")
	want(t, "POST from an http origin", r.do("POST", "/v1/api-tokens", cookie, create, "Origin", strings.Replace(r.origin(), "https:", "http:", 1), console.CSRFHeader, csrf), 403, "Origin")
	want(t, "GET cross-site", r.do("GET", "/v1/agents", cookie, "", "Sec-Fetch-Site", "cross-site"), 403, "cross-site")
	want(t, "GET from another origin", r.do("GET", "/console/events", cookie, "", "Origin", "https://evil.example"), 403, "Origin")
	tokens := r.do("GET", "/v1/api-tokens", cookie, "")
	if strings.Contains(tokens.body, "from-console") {
		t.Fatalf("a refused request created a token: %s", tokens.body)
	}
	want(t, "POST with both", r.do("POST", "/v1/api-tokens", cookie, create, "Origin", r.origin(), console.CSRFHeader, csrf), 201, "from-console")

	// Roles are the API's: a viewer's session with a valid token is refused.
	vcookie, vcsrf := r.login("token", r.tokens["viewer"])
	want(t, "viewer POST", r.do("POST", "/v1/api-tokens", vcookie, create, "Origin", r.origin(), console.CSRFHeader, vcsrf), 403, "admin role")

	// A bearer token is unaffected by the console's rules.
	want(t, "bearer GET", r.do("GET", "/v1/agents", "", "", "Authorization", "Bearer "+r.tokens["viewer"], "Origin", "https://evil.example"), 200, "[")

	// Logout needs the CSRF token too, then the cookie is dead.
	want(t, "logout without CSRF", r.do("POST", "/console/logout", cookie, "", "Origin", r.origin()), 403, "CSRF")
	want(t, "logout", r.do("POST", "/console/logout", cookie, "", "Origin", r.origin(), console.CSRFHeader, csrf), 204, "")
	want(t, "after logout", r.do("GET", "/v1/agents", cookie, ""), 401, "log in again")
	audit := r.do("GET", "/v1/audit", "", "", "Authorization", "Bearer "+r.tokens["admin"])
	for _, action := range []string{"console.login", "console.logout"} {
		if !strings.Contains(audit.body, action) {
			t.Errorf("audit log lacks %s", action)
		}
	}
}

func TestRevokedTokenEndsSession(t *testing.T) {
	r := newRelay(t)
	cookie, _ := r.login("token", r.tokens["viewer"])
	want(t, "before", r.do("GET", "/v1/agents", cookie, ""), 200, "[")
	toks, err := r.st.ListAPITokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.Role == "viewer" {
			if err := r.st.RevokeAPIToken(context.Background(), tok.ID, r.clock.now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	want(t, "after the token is revoked", r.do("GET", "/v1/agents", cookie, ""), 401, "revoked")
	want(t, "the session endpoint", r.do("GET", "/console/session", cookie, ""), 401, "revoked")
}

func TestPageHeaders(t *testing.T) {
	r := newRelay(t)
	for _, path := range []string{"/", "/login", "/assets/app.js", "/assets/style.css"} {
		req, _ := http.NewRequest("GET", r.srv.URL+path, nil)
		resp, err := r.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
			resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: %d, CSP %q, X-Frame-Options %q", path, resp.StatusCode, csp, resp.Header.Get("X-Frame-Options"))
		}
	}
	want(t, "an unknown path", r.do("GET", "/nope", "", ""), 404, "")
}
