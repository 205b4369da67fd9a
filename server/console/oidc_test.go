package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/console"
	"github.com/patchbay/patchbay/server/sso"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// The single sign-on routes up to the provider (the whole flow against a
// real provider is e2e's TestOIDC): the login page learns whether SSO is
// on; a CLI start needs well-formed loopback parameters; a provider that
// cannot be reached, and a callback without this browser's flow cookie or
// with another state, end on the console's login page (or the CLI's
// listener) with a message, never in a session.
func TestSSORoutes(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p, err := sso.New(sso.Config{Issuer: "https://127.0.0.1:1/", ClientID: "patchbay", ClientSecret: "s",
		RoleMap: map[string]string{"helpdesk": "technician"}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	a := &api.API{Store: st, Log: zerolog.Nop(), SSO: p}
	con := console.New(console.Config{Store: st, Audit: a.Audit, Online: func(string) bool { return false },
		SSO: p, SSOLogin: a, Log: zerolog.Nop()})
	mux := http.NewServeMux()
	con.Register(mux, ctx)
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	hc := srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path string, cookies ...*http.Cookie) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	consoleError := func(resp *http.Response, want string) {
		t.Helper()
		loc := resp.Header.Get("Location")
		msg, _ := url.PathUnescape(strings.TrimPrefix(loc, "/#sso-error="))
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/#sso-error=") || !strings.Contains(msg, want) {
			t.Errorf("got %d to %q, want 303 to /#sso-error= with %q", resp.StatusCode, loc, want)
		}
		for _, c := range resp.Cookies() {
			if c.Name == console.CookieName {
				t.Errorf("a session cookie was set: %v", c)
			}
		}
	}

	if resp := get("/console/login-options"); resp.StatusCode != 200 {
		t.Fatalf("login options: %d", resp.StatusCode)
	}
	if resp := get("/console/oidc/start?cli_port=70000&cli_state=short&cli_challenge=x"); resp.StatusCode != 400 {
		t.Errorf("bad CLI parameters: %d, want 400", resp.StatusCode)
	}
	consoleError(get("/console/oidc/start"), "reach the identity provider https://127.0.0.1:1/")

	state, challenge := strings.Repeat("s", 20), strings.Repeat("c", 43)
	resp := get("/console/oidc/start?cli_port=5555&cli_state=" + state + "&cli_challenge=" + challenge)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Host != "127.0.0.1:5555" || loc.Query().Get("state") != state ||
		!strings.Contains(loc.Query().Get("error"), "reach the identity provider") {
		t.Errorf("CLI start with the provider down: %d to %v, want the CLI's listener told why", resp.StatusCode, loc)
	}

	consoleError(get("/console/oidc/callback?code=x&state=y"), "not started in this browser")
	flow := &http.Cookie{Name: console.SSOCookieName, Value: "eyJzIjoicyIsIm4iOiJuIiwidiI6InYiLCJyIjoiciJ9"} // {"s":"s","n":"n","v":"v","r":"r"}
	consoleError(get("/console/oidc/callback?code=x&state=other", flow), "not started in this browser")
}
