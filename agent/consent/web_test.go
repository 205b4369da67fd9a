package consent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// webConsent starts a Consent with the web backend; opened counts the times
// it tried to open a browser.
func webConsent(t *testing.T, mode Mode, timeout time.Duration, s Sessions) (c *Consent, opened *atomic.Int32) {
	t.Helper()
	opened = new(atomic.Int32)
	p := Policy{Mode: mode, Backend: "web", Timeout: timeout}
	c = start(t, p, s, options{openBrowser: func(string) { opened.Add(1) }})
	if c.URL() == "" {
		t.Fatal("no URL")
	}
	return c, opened
}

// pageBase is the page's origin, e.g. http://127.0.0.1:41234.
func pageBase(c *Consent) string {
	u, _ := url.Parse(c.URL())
	return u.Scheme + "://" + u.Host
}

func pageToken(c *Consent) string {
	u, _ := url.Parse(c.URL())
	return u.Query().Get("t")
}

// call makes an API request; hdr adds headers (a nil value deletes one).
func call(t *testing.T, method, u string, body any, hdr map[string]string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// api calls the page's API with the token.
func api(t *testing.T, c *Consent, method, path string, body any) (int, string) {
	t.Helper()
	return call(t, method, pageBase(c)+path, body, map[string]string{TokenHeader: pageToken(c)})
}

func getState(t *testing.T, c *Consent) stateView {
	t.Helper()
	code, body := api(t, c, "GET", "/api/state", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/state: %d %s", code, body)
	}
	var s stateView
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func waitPending(t *testing.T, c *Consent, n int) stateView {
	t.Helper()
	var s stateView
	waitFor(t, "pending requests in the page", 5*time.Second, func() bool { s = getState(t, c); return len(s.Pending) == n })
	return s
}

func TestWebURLIsLoopbackWithToken(t *testing.T) {
	c, _ := webConsent(t, ModePrompt, 5*time.Second, nil)
	u, err := url.Parse(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() != "127.0.0.1" || u.Path != "/" || len(u.Query().Get("t")) != 32 {
		t.Errorf("URL = %s, want http://127.0.0.1:PORT/?t=<32 hex digits>", c.URL())
	}
}

func TestWebRefusesWithoutToken(t *testing.T) {
	c, _ := webConsent(t, ModePrompt, 5*time.Second, nil)
	base, tok := pageBase(c), pageToken(c)
	tests := []struct {
		name, method, path string
		body               any
		hdr                map[string]string
		want               int
	}{
		{"state no token", "GET", "/api/state", nil, nil, 403},
		{"state wrong token", "GET", "/api/state", nil, map[string]string{TokenHeader: strings.Repeat("0", 32)}, 403},
		{"state token header", "GET", "/api/state", nil, map[string]string{TokenHeader: tok}, 200},
		{"state token query", "GET", "/api/state?t=" + tok, nil, nil, 200},
		{"page no token", "GET", "/", nil, nil, 403},
		{"page wrong token", "GET", "/?t=x" + tok[1:], nil, nil, 403},
		{"page", "GET", "/?t=" + tok, nil, nil, 200},
		{"answer no token", "POST", "/api/answer", map[string]any{"session_id": "x", "approve": true}, nil, 403},
		{"end no token", "POST", "/api/end", map[string]any{"session_id": "x"}, nil, 403},
		{"foreign host", "GET", "/api/state", nil, map[string]string{TokenHeader: tok, "Host": "evil.example"}, 403},
		{"foreign origin", "POST", "/api/answer", map[string]any{"session_id": "x", "approve": true},
			map[string]string{TokenHeader: tok, "Origin": "http://evil.example"}, 403},
		{"no JSON", "POST", "/api/answer?t=" + tok, nil, nil, 415},
		{"unknown path", "GET", "/api/secrets", nil, map[string]string{TokenHeader: tok}, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, tt.method, base+tt.path, tt.body, tt.hdr)
			if code != tt.want {
				t.Errorf("%s %s = %d %q, want %d", tt.method, tt.path, code, body, tt.want)
			}
			if code == 403 && !strings.HasPrefix(body, "forbidden: ") {
				t.Errorf("403 body %q does not say why", body)
			}
		})
	}
}

func TestWebApproveAndDeny(t *testing.T) {
	wantBy := webUser
	if runtime.GOOS == "linux" {
		wantBy = currentUser() // the test's HTTP client runs as the same user
	}
	for _, approve := range []bool{true, false} {
		t.Run(map[bool]string{true: "approve", false: "deny"}[approve], func(t *testing.T) {
			c, opened := webConsent(t, ModePrompt, 10*time.Second, nil)
			ch := decideAsync(context.Background(), c, testRequest("a1", "bob", "ticket 7", time.Time{}))
			// Nobody watches the page yet: the browser is opened (before anything polls).
			waitFor(t, "the browser to be opened", 5*time.Second, func() bool { return opened.Load() == 1 })
			s := waitPending(t, c, 1)
			p := s.Pending[0]
			if p.SessionID != "a1" || p.Technician != "bob" || p.Reason != "ticket 7" || len(p.Capabilities) != 2 ||
				p.Capabilities[0].Text != "open an interactive shell" || p.RemainingMS <= 0 || p.RemainingMS > 10000 {
				t.Errorf("pending = %+v", p)
			}
			// A request from another origin changes nothing.
			code, _ := call(t, "POST", pageBase(c)+"/api/answer", map[string]any{"session_id": "a1", "approve": true},
				map[string]string{TokenHeader: pageToken(c), "Origin": "http://evil.example"})
			if code != 403 {
				t.Errorf("cross-origin answer: %d", code)
			}
			code, body := call(t, "POST", pageBase(c)+"/api/answer", map[string]any{"session_id": "a1", "approve": approve},
				map[string]string{TokenHeader: pageToken(c), "Origin": pageBase(c)})
			if code != 200 {
				t.Fatalf("answer: %d %s", code, body)
			}
			d := await(t, ch, 5*time.Second)
			if d.Approved != approve || d.By != wantBy || d.Backend != "web" {
				t.Errorf("decision = %+v, want approved=%v by %q", d, approve, wantBy)
			}
			if !approve && d.Message != "denied by the user" {
				t.Errorf("message = %q", d.Message)
			}
			if code, _ := api(t, c, "POST", "/api/answer", map[string]any{"session_id": "a1", "approve": true}); code != 409 {
				t.Errorf("second answer: %d, want 409", code)
			}
			if len(getState(t, c).Pending) != 0 {
				t.Error("the request is still pending")
			}
			if n := opened.Load(); n != 1 {
				t.Errorf("browser opened %d times, want once", n)
			}
		})
	}
}

func TestWebBadAnswers(t *testing.T) {
	c, _ := webConsent(t, ModePrompt, 5*time.Second, nil)
	for _, body := range []any{
		map[string]any{"session_id": "nope", "approve": true},
		map[string]any{"session_id": "a"},
		map[string]any{"approve": true},
		map[string]any{"session_id": "a", "approve": "yes"},
		map[string]any{"session_id": "a", "approve": true, "by": "admin"},
	} {
		if code, resp := api(t, c, "POST", "/api/answer", body); code != 400 && code != 409 {
			t.Errorf("answer %v: %d %s", body, code, resp)
		}
	}
}

func TestWebTimeout(t *testing.T) {
	c, _ := webConsent(t, ModePrompt, time.Second, nil)
	d := c.Decide(context.Background(), testRequest("t1", "bob", "why", time.Now().Add(time.Hour)))
	if d.Approved || d.By != ByTimeout || d.Message != "no answer within 1s" {
		t.Errorf("decision = %+v", d)
	}
}

func TestWebSeveralPending(t *testing.T) {
	c, _ := webConsent(t, ModePrompt, 10*time.Second, nil)
	a := decideAsync(context.Background(), c, testRequest("r-a", "alice", "one", time.Time{}))
	waitPending(t, c, 1)
	b := decideAsync(context.Background(), c, testRequest("r-b", "bob", "two", time.Time{}))
	s := waitPending(t, c, 2)
	if s.Pending[0].SessionID != "r-a" || s.Pending[1].SessionID != "r-b" {
		t.Errorf("pending order = %+v", s.Pending)
	}
	api(t, c, "POST", "/api/answer", map[string]any{"session_id": "r-b", "approve": false})
	api(t, c, "POST", "/api/answer", map[string]any{"session_id": "r-a", "approve": true})
	if d := await(t, a, 5*time.Second); !d.Approved {
		t.Errorf("alice: %+v", d)
	}
	if d := await(t, b, 5*time.Second); d.Approved {
		t.Errorf("bob: %+v", d)
	}
}

func TestWebPageEscapes(t *testing.T) {
	c, _ := webConsent(t, ModePrompt, 10*time.Second, nil)
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>"'&`
	ch := decideAsync(context.Background(), c, testRequest("e1", "bob", evil, time.Time{}))
	waitPending(t, c, 1)
	code, page := call(t, "GET", c.URL(), nil, nil)
	if code != 200 {
		t.Fatalf("GET page: %d", code)
	}
	if strings.Contains(page, "<script>alert(1)") || strings.Contains(page, "<img src=x") {
		t.Error("the page contains the reason unescaped")
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;") {
		t.Errorf("the page does not show the reason escaped:\n%s", page)
	}
	if !strings.Contains(page, "open an interactive shell") || !strings.Contains(page, `data-action="approve" data-session="e1"`) {
		t.Error("the page does not list the request")
	}
	api(t, c, "POST", "/api/answer", map[string]any{"session_id": "e1", "approve": false})
	await(t, ch, 5*time.Second)
}

func TestWebPageHeaders(t *testing.T) {
	c, _ := webConsent(t, ModePrompt, 5*time.Second, nil)
	resp, err := http.Get(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'nonce-") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for k, v := range map[string]string{"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestWebEndSession(t *testing.T) {
	s := &fakeSessions{live: []Live{{ID: "l1", Technician: "carol", Reason: "VPN <b>broken</b>", Capabilities: []string{"shell"}, Started: time.Now()}}}
	c, _ := webConsent(t, ModeNotify, 5*time.Second, s)
	st := getState(t, c)
	if len(st.Live) != 1 || st.Live[0].ID != "l1" || !st.CanEnd {
		t.Fatalf("live = %+v, can_end %v", st.Live, st.CanEnd)
	}
	_, page := call(t, "GET", c.URL(), nil, nil)
	if !strings.Contains(page, `data-action="end" data-session="l1"`) || !strings.Contains(page, "VPN &lt;b&gt;broken&lt;/b&gt;") {
		t.Errorf("the page does not offer to end the session:\n%s", page)
	}
	if code, body := api(t, c, "POST", "/api/end", map[string]any{"session_id": "l1"}); code != 200 {
		t.Fatalf("end: %d %s", code, body)
	}
	ended := s.endedList()
	if len(ended) != 1 || !strings.HasPrefix(ended[0], "l1 ") {
		t.Errorf("Sessions.End calls = %q", ended)
	}
	if code, _ := api(t, c, "POST", "/api/end", map[string]any{"session_id": "l1"}); code != 409 {
		t.Errorf("ending it again: %d, want 409", code)
	}
}

// Without a session manager the page lists what Started/Ended told it.
func TestWebNotifyWithoutSessions(t *testing.T) {
	c, opened := webConsent(t, ModeNotify, 5*time.Second, nil)
	d := c.Decide(context.Background(), testRequest("n1", "dave", "patching", time.Time{}))
	if !d.Approved || d.By != ByPolicy || d.Backend != "web" {
		t.Errorf("decision = %+v", d)
	}
	c.Started(Live{ID: "n1", Technician: "dave", Reason: "patching", Capabilities: []string{"exec"}})
	waitFor(t, "the browser to be opened", 5*time.Second, func() bool { return opened.Load() == 1 })
	st := getState(t, c)
	if len(st.Live) != 1 || st.CanEnd {
		t.Errorf("live = %+v, can_end %v", st.Live, st.CanEnd)
	}
	if code, _ := api(t, c, "POST", "/api/end", map[string]any{"session_id": "n1"}); code != http.StatusNotImplemented {
		t.Errorf("end without a session manager: %d", code)
	}
	c.Ended("n1", "done")
	st = getState(t, c)
	if len(st.Live) != 0 {
		t.Errorf("live after Ended = %+v", st.Live)
	}
	if last := st.Events[len(st.Events)-1].Text; last != "the session of dave ended: done" {
		t.Errorf("last event = %q", last)
	}
}

func TestWebCloseStopsServer(t *testing.T) {
	c, err := newConsent(Policy{Backend: "web"}, nil, testLogger(t), options{openBrowser: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	ch := decideAsync(context.Background(), c, testRequest("c1", "bob", "why", time.Time{}))
	waitPending(t, c, 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d := await(t, ch, 5*time.Second); d.Approved || d.By != ByAgent {
		t.Errorf("decision = %+v", d)
	}
	if _, err := http.Get(c.URL()); err == nil {
		t.Error("the page is still served after Close")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWebRefusesPublicAddress(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0", "192.0.2.10:8080", "example.com:80"} {
		_, err := New(Policy{Backend: "web", WebAddr: addr}, nil, testLogger(t))
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("web_addr %s: %v", addr, err)
		}
	}
}
