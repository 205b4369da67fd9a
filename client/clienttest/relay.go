// Package clienttest runs a small in-memory stand-in for the relay's REST API
// over real TLS (a CA and server certificate made by package certs), for unit
// tests of package client and of the patchbay CLI. It implements the
// endpoints those tests need with the documented status codes and error
// bodies, nothing more; end-to-end tests run the real relay instead.
package clienttest

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/internal/selector"
)

// Tokens every Relay accepts, and the identities they stand for.
const (
	AdminToken  = "pbt_admin_test_token"
	ViewerToken = "pbt_viewer_test_token"
)

// Relay is a fake relay. Lock it to change its fields while it serves.
type Relay struct {
	sync.Mutex

	URL         string    // https://127.0.0.1:PORT
	CA          *certs.CA // the relay's CA
	Fingerprint string    // the CA's fingerprint
	Now         func() time.Time

	Tokens       map[string]apiv1.Whoami // bearer token -> identity
	Agents       []apiv1.Agent
	EnrollTokens []apiv1.EnrollToken
	APITokens    []apiv1.APIToken
	Records      []audit.Record
	Head         *apiv1.AuditHead // nil: the last record's seq and hash
	// PageLimit, when > 0, caps the records one audit page returns below
	// what the client asked for, as a relay may.
	PageLimit int
	// Requests logs "METHOD /path?query" of every authenticated request.
	Requests []string
	// Hook, if set, runs before each authenticated request is handled,
	// without the lock held (it may call AppendAudit).
	Hook func(req *http.Request)
}

// New starts a Relay on 127.0.0.1 with a fresh CA in t.TempDir() and stops
// it when the test ends.
func New(t testing.TB) *Relay {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certs.LoadOrCreateServerCert(dir, ca, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{
		CA:          ca,
		Fingerprint: ca.Fingerprint(),
		Now:         time.Now,
		Tokens: map[string]apiv1.Whoami{
			AdminToken:  {TokenID: "tok-admin", Name: "alice", Role: apiv1.RoleAdmin},
			ViewerToken: {TokenID: "tok-viewer", Name: "victor", Role: apiv1.RoleViewer},
		},
	}
	srv := httptest.NewUnstartedServer(r.handler())
	srv.TLS = ca.ServerTLSConfig(cert)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Config returns the client configuration `patchbay login` would save for token.
func (r *Relay) Config(token string) client.Config {
	r.Lock()
	defer r.Unlock()
	who := r.Tokens[token]
	return client.Config{
		Server:        r.URL,
		Token:         token,
		CAPEM:         string(r.CA.CertPEM),
		CAFingerprint: r.Fingerprint,
		Name:          who.Name,
		Role:          who.Role,
	}
}

// AppendAudit appends a correctly chained audit record.
func (r *Relay) AppendAudit(at time.Time, actor, action, target string, detail map[string]string) audit.Record {
	r.Lock()
	defer r.Unlock()
	rec := audit.Record{
		Seq:    int64(len(r.Records)) + 1,
		Time:   audit.NormalTime(at),
		Actor:  actor,
		Action: action,
		Target: target,
		Detail: detail,
	}
	if n := len(r.Records); n > 0 {
		rec.PrevHash = r.Records[n-1].Hash
	}
	rec.Hash = rec.ComputeHash()
	r.Records = append(r.Records, rec)
	return rec
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, apiv1.Error{Error: fmt.Sprintf(format, args...)})
}

// handlerFunc is an authenticated handler, called with r locked.
type handlerFunc func(w http.ResponseWriter, req *http.Request, who apiv1.Whoami)

func (r *Relay) auth(role string, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		r.Lock()
		hook := r.Hook
		r.Unlock()
		if hook != nil {
			hook(req)
		}
		r.Lock()
		defer r.Unlock()
		r.Requests = append(r.Requests, req.Method+" "+req.URL.RequestURI())
		tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		who, known := r.Tokens[tok]
		if !ok || !known {
			writeError(w, http.StatusUnauthorized, "missing or invalid API token")
			return
		}
		if apiv1.RoleRank(who.Role) < apiv1.RoleRank(role) {
			writeError(w, http.StatusForbidden, "this needs the %s role; token %q has role %s", role, who.Name, who.Role)
			return
		}
		h(w, req, who)
	}
}

func (r *Relay) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusOK, client.Health{Status: "ok", Version: "test", CAFingerprint: r.Fingerprint})
	})
	whoami := func(w http.ResponseWriter, req *http.Request, who apiv1.Whoami) {
		who.CAFingerprint = r.Fingerprint
		writeJSON(w, http.StatusOK, who)
	}
	mux.Handle("POST /v1/login", r.auth(apiv1.RoleViewer, whoami))
	mux.Handle("GET /v1/whoami", r.auth(apiv1.RoleViewer, whoami))
	mux.Handle("GET /v1/agents", r.auth(apiv1.RoleViewer, r.listAgents))
	mux.Handle("GET /v1/agents/{id}", r.auth(apiv1.RoleViewer, func(w http.ResponseWriter, req *http.Request, _ apiv1.Whoami) {
		if i := r.findAgent(w, req.PathValue("id")); i >= 0 {
			writeJSON(w, http.StatusOK, r.Agents[i])
		}
	}))
	mux.Handle("POST /v1/agents/{id}/revoke", r.auth(apiv1.RoleAdmin, func(w http.ResponseWriter, req *http.Request, _ apiv1.Whoami) {
		if i := r.findAgent(w, req.PathValue("id")); i >= 0 {
			a := &r.Agents[i]
			if !a.Revoked {
				now := r.Now().UTC()
				a.Revoked, a.RevokedAt, a.Online = true, &now, false
			}
			writeJSON(w, http.StatusOK, *a)
		}
	}))
	mux.Handle("POST /v1/enroll-tokens", r.auth(apiv1.RoleAdmin, r.createEnrollToken))
	mux.Handle("GET /v1/enroll-tokens", r.auth(apiv1.RoleAdmin, func(w http.ResponseWriter, req *http.Request, _ apiv1.Whoami) {
		out := []apiv1.EnrollToken{}
		for _, t := range r.EnrollTokens {
			t.Token = ""
			out = append(out, t)
		}
		writeJSON(w, http.StatusOK, out)
	}))
	mux.Handle("DELETE /v1/enroll-tokens/{id}", r.auth(apiv1.RoleAdmin, func(w http.ResponseWriter, req *http.Request, _ apiv1.Whoami) {
		for i := range r.EnrollTokens {
			if r.EnrollTokens[i].ID == req.PathValue("id") {
				r.EnrollTokens[i].Revoked = true
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		writeError(w, http.StatusNotFound, "no enrollment token with ID %q", req.PathValue("id"))
	}))
	mux.Handle("POST /v1/api-tokens", r.auth(apiv1.RoleAdmin, r.createAPIToken))
	mux.Handle("GET /v1/api-tokens", r.auth(apiv1.RoleAdmin, func(w http.ResponseWriter, req *http.Request, _ apiv1.Whoami) {
		out := []apiv1.APIToken{}
		for _, t := range r.APITokens {
			t.Token = ""
			out = append(out, t)
		}
		writeJSON(w, http.StatusOK, out)
	}))
	mux.Handle("DELETE /v1/api-tokens/{id}", r.auth(apiv1.RoleAdmin, func(w http.ResponseWriter, req *http.Request, _ apiv1.Whoami) {
		for i := range r.APITokens {
			if r.APITokens[i].ID == req.PathValue("id") {
				r.APITokens[i].Revoked = true
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		writeError(w, http.StatusNotFound, "no API token with ID %q", req.PathValue("id"))
	}))
	mux.Handle("GET /v1/audit", r.auth(apiv1.RoleViewer, r.listAudit))
	mux.Handle("GET /v1/audit/head", r.auth(apiv1.RoleViewer, func(w http.ResponseWriter, req *http.Request, _ apiv1.Whoami) {
		writeJSON(w, http.StatusOK, r.head())
	}))
	return mux
}

func (r *Relay) listAgents(w http.ResponseWriter, req *http.Request, _ apiv1.Whoami) {
	sel, err := selector.Parse(req.URL.Query().Get("target"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	out := []apiv1.Agent{}
	for _, a := range r.Agents {
		if sel.Match(selector.Attrs{ID: a.ID, Hostname: a.Hostname, OS: a.OS, Arch: a.Arch, Tags: a.Tags}) {
			out = append(out, a)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// findAgent returns the index of the agent with that ID or hostname, or
// writes 404/409 and returns -1.
func (r *Relay) findAgent(w http.ResponseWriter, ref string) int {
	var found []int
	for i, a := range r.Agents {
		if strings.EqualFold(a.ID, ref) {
			return i
		}
		if strings.EqualFold(a.Hostname, ref) {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 0:
		writeError(w, http.StatusNotFound, "no agent with ID or hostname %q: see patchbay agents list", ref)
		return -1
	case 1:
		return found[0]
	}
	writeError(w, http.StatusConflict, "hostname %q names %d agents: use an ID", ref, len(found))
	return -1
}

func (r *Relay) createEnrollToken(w http.ResponseWriter, req *http.Request, who apiv1.Whoami) {
	var body apiv1.EnrollTokenRequest
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "decode request: %v", err)
		return
	}
	ttl := 24 * time.Hour
	if body.TTL != "" {
		var err error
		if ttl, err = apiv1.ParseTTL(body.TTL, 365*24*time.Hour); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	uses := 1
	if body.Uses != nil {
		uses = *body.Uses
	}
	now := r.Now().UTC()
	n := len(r.EnrollTokens) + 1
	tok := apiv1.EnrollToken{
		ID:          fmt.Sprintf("et-%d", n),
		Token:       fmt.Sprintf("pbe_secret_%d", n),
		Tags:        body.Tags,
		UsesAllowed: uses,
		ExpiresAt:   now.Add(ttl),
		CreatedAt:   now,
		CreatedBy:   who.Name,
	}
	if tok.Tags == nil {
		tok.Tags = map[string]string{}
	}
	r.EnrollTokens = append(r.EnrollTokens, tok)
	writeJSON(w, http.StatusCreated, tok)
}

func (r *Relay) createAPIToken(w http.ResponseWriter, req *http.Request, _ apiv1.Whoami) {
	var body apiv1.APITokenRequest
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "decode request: %v", err)
		return
	}
	if apiv1.RoleRank(body.Role) == 0 {
		writeError(w, http.StatusBadRequest, "role %q: want viewer, technician or admin", body.Role)
		return
	}
	now := r.Now().UTC()
	n := len(r.APITokens) + 1
	tok := apiv1.APIToken{
		ID:        fmt.Sprintf("at-%d", n),
		Token:     fmt.Sprintf("pbt_secret_%d", n),
		Role:      body.Role,
		Name:      body.Name,
		CreatedAt: now,
	}
	if body.TTL != "" {
		ttl, err := apiv1.ParseTTL(body.TTL, 10*365*24*time.Hour)
		if err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		exp := now.Add(ttl)
		tok.ExpiresAt = &exp
	}
	r.APITokens = append(r.APITokens, tok)
	writeJSON(w, http.StatusCreated, tok)
}

func (r *Relay) listAudit(w http.ResponseWriter, req *http.Request, _ apiv1.Whoami) {
	q := req.URL.Query()
	after, limit := int64(0), 100
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "after: want a sequence number")
			return
		}
		after = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit: want 1 to 1000")
			return
		}
		limit = n
	}
	if r.PageLimit > 0 && limit > r.PageLimit {
		limit = r.PageLimit
	}
	out := []audit.Record{}
	for _, rec := range r.Records {
		if rec.Seq > after && len(out) < limit {
			out = append(out, rec)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Relay) head() apiv1.AuditHead {
	if r.Head != nil {
		return *r.Head
	}
	if n := len(r.Records); n > 0 {
		return apiv1.AuditHead{Seq: r.Records[n-1].Seq, Hash: r.Records[n-1].Hash}
	}
	return apiv1.AuditHead{}
}
