package consent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TokenHeader carries the page token on API calls (the page itself takes it
// as the query parameter t, which API calls may use too).
const TokenHeader = "X-Patchbay-Token"

// webUser is who answered in the page when the browser's user cannot be told.
const webUser = "web user"

// webServer serves the consent page on the loopback interface. Every request
// must carry the page's random token and name this server in its Host header
// (against DNS rebinding); a POST must come from the page's own origin (or
// name none) and carry JSON.
type webServer struct {
	c       *Consent
	token   string
	url     string
	hosts   map[string]bool // acceptable Host headers
	srv     *http.Server
	primary bool // the web page is the backend (not the desktop's companion)

	lastPoll atomic.Int64 // unix nanoseconds of the latest /api/state
	openMu   sync.Mutex
	lastOpen time.Time
}

// startWeb listens on the policy's loopback address and serves the page.
// primary: the page is how the user is asked (open it in a browser when a
// request arrives).
func (c *Consent) startWeb(primary bool) error {
	addr := c.policy.WebAddr
	if err := checkLoopback(addr); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("web consent backend: listen on %s: %w (set another web_addr in %s)", addr, err, FileName)
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:]) // crypto/rand.Read never fails
	w := &webServer{c: c, token: hex.EncodeToString(tok[:]), primary: primary}
	bound := ln.Addr().(*net.TCPAddr)
	w.url = "http://" + bound.String() + "/?t=" + w.token
	p := fmt.Sprint(bound.Port)
	w.hosts = map[string]bool{bound.String(): true, "localhost:" + p: true}
	w.srv = &http.Server{
		Handler:           w.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	c.web = w
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := w.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			c.log.Error().Err(err).Msg("consent page: server stopped")
		}
	}()
	c.log.Info().Str("url", w.url).Msg("consent page: open this URL to answer session requests and end sessions")
	return nil
}

// close stops the server, giving requests in flight two seconds.
func (w *webServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := w.srv.Shutdown(ctx); err != nil {
		return w.srv.Close()
	}
	return nil
}

// openIfUnwatched opens the page in the user's browser unless a page polled
// in the last three seconds or the browser was opened in the last ten.
func (w *webServer) openIfUnwatched(c *Consent) {
	if time.Since(time.Unix(0, w.lastPoll.Load())) < 3*time.Second {
		return
	}
	w.openMu.Lock()
	if time.Since(w.lastOpen) < 10*time.Second {
		w.openMu.Unlock()
		return
	}
	w.lastOpen = time.Now()
	w.openMu.Unlock()
	c.goOwned(func() {
		if c.opts.openBrowser != nil {
			c.opts.openBrowser(w.url)
			return
		}
		ctx, cancel := c.closeContext(30 * time.Second)
		defer cancel()
		if err := openBrowser(ctx, w.url); err != nil {
			c.log.Debug().Err(err).Msg("consent page: could not open a browser")
		}
	})
}

func (w *webServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", w.servePage)
	mux.HandleFunc("GET /api/state", w.serveState)
	mux.HandleFunc("POST /api/answer", w.serveAnswer)
	mux.HandleFunc("POST /api/end", w.serveEnd)
	return w.guard(mux)
}

// guard sets protective headers and refuses requests without the token,
// with a foreign Host, or (for POST) from another origin or without JSON.
func (w *webServer) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h := rw.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		if !w.hosts[strings.ToLower(r.Host)] {
			http.Error(rw, "forbidden: this page only answers to "+w.url[:strings.Index(w.url, "/?")], http.StatusForbidden)
			return
		}
		tok := r.Header.Get(TokenHeader)
		if tok == "" {
			tok = r.URL.Query().Get("t")
		}
		if subtle.ConstantTimeCompare([]byte(tok), []byte(w.token)) != 1 {
			http.Error(rw, "forbidden: missing or wrong token; open the consent page through the URL the Patchbay agent logged (it ends in ?t=...)", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost {
			if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
				http.Error(rw, fmt.Sprintf("forbidden: request from origin %q", o), http.StatusForbidden)
				return
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				http.Error(rw, "unsupported media type: send JSON", http.StatusUnsupportedMediaType)
				return
			}
			r.Body = http.MaxBytesReader(rw, r.Body, 4<<10)
		}
		next.ServeHTTP(rw, r)
	})
}

// Page and API views of the state.
type (
	capView struct {
		Name string `json:"name"`
		Text string `json:"text"`
	}
	pendingView struct {
		SessionID    string    `json:"session_id"`
		Technician   string    `json:"technician"`
		Reason       string    `json:"reason"`
		Capabilities []capView `json:"capabilities"`
		Expires      time.Time `json:"expires"`
		RemainingMS  int64     `json:"remaining_ms"`
		// Desktop: what may be allowed of the screen (control: Allow full
		// control, View only, Deny; view-only: Allow view only, Deny; "":
		// no screen asked for), and DesktopText explains it.
		Desktop     string `json:"desktop,omitempty"`
		DesktopText string `json:"desktop_text,omitempty"`
	}
	liveView struct {
		ID           string    `json:"id"`
		Technician   string    `json:"technician"`
		Reason       string    `json:"reason"`
		Capabilities []capView `json:"capabilities"`
		Started      time.Time `json:"started"`
	}
	stateView struct {
		Hostname string        `json:"hostname"`
		Mode     Mode          `json:"mode"`
		Pending  []pendingView `json:"pending"`
		Live     []liveView    `json:"live"`
		CanEnd   bool          `json:"can_end"`
		Events   []pageEvent   `json:"events"`
	}
)

func capViews(caps []string) []capView {
	v := make([]capView, 0, len(caps))
	for _, c := range caps {
		v = append(v, capView{Name: c, Text: capText(c)})
	}
	return v
}

// view snapshots what the page shows.
func (w *webServer) view() stateView {
	s := w.c.snapshot()
	now := time.Now()
	v := stateView{Hostname: w.c.hostname, Mode: w.c.policy.Mode, CanEnd: s.canEnd,
		Pending: []pendingView{}, Live: []liveView{}, Events: s.events}
	if v.Events == nil {
		v.Events = []pageEvent{}
	}
	for _, r := range s.pending {
		v.Pending = append(v.Pending, pendingView{SessionID: r.SessionID, Technician: r.Technician, Reason: r.Reason,
			Capabilities: capViews(promptCaps(r)), Expires: r.Deadline.UTC(), RemainingMS: max(0, r.Deadline.Sub(now).Milliseconds()),
			Desktop: r.desktop, DesktopText: desktopPromptText(r)})
	}
	for _, l := range s.live {
		v.Live = append(v.Live, liveView{ID: l.ID, Technician: l.Technician, Reason: l.Reason,
			Capabilities: capViews(l.Capabilities), Started: l.Started.UTC()})
	}
	return v
}

func (w *webServer) serveState(rw http.ResponseWriter, _ *http.Request) {
	w.lastPoll.Store(time.Now().UnixNano())
	writeJSON(rw, http.StatusOK, w.view())
}

// sessionBody is the body of /api/answer and /api/end.
type sessionBody struct {
	SessionID string `json:"session_id"`
	Approve   *bool  `json:"approve,omitempty"`
	// Choice, with approve true: "view-only" (the View only button of a
	// request for the screen), or absent.
	Choice string `json:"choice,omitempty"`
}

func readBody(rw http.ResponseWriter, r *http.Request, needApprove bool) (sessionBody, bool) {
	var b sessionBody
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&b)
	switch {
	case err != nil:
		http.Error(rw, "bad request: "+err.Error(), http.StatusBadRequest)
	case b.SessionID == "":
		http.Error(rw, "bad request: session_id missing", http.StatusBadRequest)
	case needApprove && b.Approve == nil:
		http.Error(rw, "bad request: approve (true or false) missing", http.StatusBadRequest)
	case b.Choice != "" && b.Choice != ChoiceViewOnly:
		http.Error(rw, "bad request: choice: want view-only or none", http.StatusBadRequest)
	default:
		return b, true
	}
	return b, false
}

func (w *webServer) serveAnswer(rw http.ResponseWriter, r *http.Request) {
	b, ok := readBody(rw, r, true)
	if !ok {
		return
	}
	a := answer{approved: *b.Approve, by: peerUser(r), message: "denied by the user"}
	switch desk := w.pendingDesktop(b.SessionID); {
	case a.approved && desk != "" && (b.Choice == ChoiceViewOnly || desk == DesktopViewOnly):
		a.choice, a.message = ChoiceViewOnly, "approved view only by the user in the consent page"
	case a.approved:
		a.message = "approved by the user in the consent page"
	}
	if err := w.c.answerPending(b.SessionID, a); err != nil {
		http.Error(rw, err.Error(), http.StatusConflict)
		return
	}
	writeJSON(rw, http.StatusOK, map[string]bool{"ok": true})
}

// pendingDesktop is what the pending request id offers for the screen.
func (w *webServer) pendingDesktop(id string) string {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if p := w.c.pending[id]; p != nil {
		return p.req.desktop
	}
	return ""
}

func (w *webServer) serveEnd(rw http.ResponseWriter, r *http.Request) {
	b, ok := readBody(rw, r, false)
	if !ok {
		return
	}
	if w.c.sessions == nil {
		http.Error(rw, "ending sessions from this page is not available", http.StatusNotImplemented)
		return
	}
	by := peerUser(r)
	if err := w.c.sessions.End(b.SessionID, by); err != nil {
		http.Error(rw, "could not end the session: "+cleanText(err.Error(), maxMessage), http.StatusConflict)
		return
	}
	w.c.log.Info().Str("session_id", b.SessionID).Str("by", by).Msg("consent page: the user ended a session")
	w.c.mu.Lock()
	w.c.addEventLocked(by + " ended a session")
	w.c.mu.Unlock()
	writeJSON(rw, http.StatusOK, map[string]bool{"ok": true})
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(v)
}
