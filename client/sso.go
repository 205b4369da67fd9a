package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// SSO is a single sign-on of the CLI in progress (patchbay login --sso),
// RFC 8252 style: the CLI listens on 127.0.0.1 at a random port; the
// person signs in at the organisation's identity provider in a browser
// through the relay (URL); the relay then sends the browser to the
// listener with a one-time code, which the CLI redeems at POST
// /v1/login/sso with its PKCE verifier (only its S256 challenge went
// through the browser). The answer is the same 12-hour session token a
// password login gives; the relay's CA is pinned as for every login.
type SSO struct {
	// URL is the address to open in a browser.
	URL string

	p        *pinned
	ln       net.Listener
	srv      *http.Server
	state    string
	verifier string
	once     sync.Once
	done     chan ssoResult
}

type ssoResult struct {
	cfg Config
	out apiv1.PasswordLogin
	err error
}

func random43() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// StartSSO opens the loopback listener and returns the sign-in to wait on.
func StartSSO(server, fingerprint string) (*SSO, error) {
	p, err := dialPinned(server, fingerprint, "")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.c.Close()
		return nil, fmt.Errorf("single sign-on: listen on 127.0.0.1 for the browser's return: %w", err)
	}
	s := &SSO{p: p, ln: ln, state: random43(), verifier: random43(), done: make(chan ssoResult, 1)}
	sum := sha256.Sum256([]byte(s.verifier))
	q := url.Values{"cli_port": {strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)}, "cli_state": {s.state},
		"cli_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}}
	s.URL = p.c.base.String() + "/console/oidc/start?" + q.Encode()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", s.handleCallback)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// handleCallback is where the relay sends the browser back.
func (s *SSO) handleCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(s.state)) != 1 {
		page(w, http.StatusBadRequest, "This is not the sign-in that patchbay login --sso is waiting for. Start it again from the terminal.")
		return
	}
	var res ssoResult
	switch {
	case q.Get("error") != "":
		res.err = fmt.Errorf("log in with single sign-on: %s", q.Get("error"))
	case q.Get("code") == "":
		res.err = errors.New("log in with single sign-on: the relay sent no code: run patchbay login --sso again")
	default:
		res.cfg, res.out, res.err = s.redeem(r.Context(), q.Get("code"))
	}
	if res.err != nil {
		page(w, http.StatusOK, "Sign-in failed: "+res.err.Error())
	} else {
		page(w, http.StatusOK, fmt.Sprintf("Signed in to Patchbay as %s (%s). You can close this tab and go back to the terminal.", res.out.Name, res.out.Role))
	}
	s.once.Do(func() { s.done <- res })
}

func (s *SSO) redeem(ctx context.Context, code string) (Config, apiv1.PasswordLogin, error) {
	var out apiv1.PasswordLogin
	if err := s.p.c.do(ctx, http.MethodPost, "/v1/login/sso", nil, apiv1.SSOLoginRequest{Code: code, Verifier: s.verifier}, &out); err != nil {
		return Config{}, out, fmt.Errorf("log in to %s with single sign-on: %w", s.p.c.base, err)
	}
	cfg, err := s.p.config(out.Token, out.Whoami)
	cfg.User = out.User
	return cfg, out, err
}

func page(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Patchbay sign-in</title></head><body><p id=\"result\">%s</p></body></html>\n",
		html.EscapeString(msg))
}

// Wait waits for the browser to come back (or ctx to end) and returns the
// Config to save and the relay's answer; it saves nothing.
func (s *SSO) Wait(ctx context.Context) (Config, apiv1.PasswordLogin, error) {
	select {
	case res := <-s.done:
		return res.cfg, res.out, res.err
	case <-ctx.Done():
		return Config{}, apiv1.PasswordLogin{}, fmt.Errorf("log in with single sign-on: no answer from the browser: %w", ctx.Err())
	}
}

// Close stops the listener.
func (s *SSO) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx) // lets the result page finish
	s.p.c.Close()
}
