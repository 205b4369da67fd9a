// Package clienttest runs the relay's real REST API (package server/api over a
// SQLite store in a temporary directory) on 127.0.0.1 over real TLS (a CA and
// server certificate made by package certs), for the tests of package client
// and of the patchbay CLI. Only tests import it: the client's own code imports
// no server package (client/deps_test.go checks).
package clienttest

import (
	"context"
	"database/sql"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/bus"
	"github.com/patchbay/patchbay/server/hub"
	"github.com/patchbay/patchbay/server/store"
)

// The names of the two API tokens every Relay starts with.
const (
	AdminName  = "alice"  // an admin reaching every site
	ViewerName = "victor" // a viewer reaching every site
)

// Relay is a relay's REST API over its own store.
type Relay struct {
	URL         string    // https://127.0.0.1:PORT
	CA          *certs.CA // the relay's CA
	Fingerprint string    // the CA's fingerprint
	Store       *store.Store
	DBPath      string // the SQLite file, for tests that tamper with rows
	API         *api.API

	// AdminToken and ViewerToken are the secrets of AdminName's and
	// ViewerName's API tokens, minted (and audited, as records 1 and 2) by
	// New; Start leaves them empty.
	AdminToken, ViewerToken string

	mu        sync.Mutex
	requests  []string
	hook      func(req *http.Request)
	pageLimit int
}

// Option changes how New sets up a Relay.
type Option func(*options)

type options struct{ now func() time.Time }

// Clock makes the API (and the tokens New mints) read the time from now.
func Clock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New starts a Relay as Start does and mints an admin token for AdminName
// and a viewer token for ViewerName.
func New(t testing.TB, opts ...Option) *Relay {
	t.Helper()
	r := Start(t, opts...)
	r.AdminToken = r.Mint(t, apiv1.RoleAdmin, AdminName)
	r.ViewerToken = r.Mint(t, apiv1.RoleViewer, ViewerName)
	return r
}

// Start starts a Relay with a fresh CA and an empty store in t.TempDir(),
// without API tokens, and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Relay {
	t.Helper()
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	dir := t.TempDir()
	ctx := context.Background()
	r := &Relay{DBPath: filepath.Join(dir, "relay.db")}
	st, err := store.Open(ctx, r.DBPath)
	if err != nil {
		t.Fatalf("open the test relay's store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	ca, err := certs.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certs.LoadOrCreateServerCert(dir, ca, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(&bus.Local{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	r.Store, r.CA, r.Fingerprint = st, ca, ca.Fingerprint()
	r.API = &api.API{Store: st, Hub: h, CA: ca, Log: zerolog.Nop(), Now: o.now}
	mux := http.NewServeMux()
	r.API.Register(mux)

	srv := httptest.NewUnstartedServer(r.wrap(mux))
	srv.TLS = ca.ServerTLSConfig(cert)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close) // runs before st.Close: requests end first
	r.URL = srv.URL
	return r
}

// Mint creates an API token of role for name reaching every site, as
// `patchbay-server admin-token` does (for any role), and returns its secret.
func (r *Relay) Mint(t testing.TB, role, name string) string {
	t.Helper()
	secret, _, err := api.MintAPIToken(context.Background(), r.Store, "system", role, name, 0, r.API.Now())
	if err != nil {
		t.Fatalf("mint a %s token for %s: %v", role, name, err)
	}
	return secret
}

// wrap records each request other than /healthz, runs the hook and caps
// audit pages, then hands the request to the API unchanged.
func (r *Relay) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		hook, pageLimit := r.hook, r.pageLimit
		if req.URL.Path != "/healthz" {
			r.requests = append(r.requests, req.Method+" "+req.URL.RequestURI())
		}
		r.mu.Unlock()
		if hook != nil {
			hook(req)
		}
		if pageLimit > 0 && req.Method == http.MethodGet && req.URL.Path == "/v1/audit" {
			q := req.URL.Query()
			if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > pageLimit {
				q.Set("limit", strconv.Itoa(pageLimit))
				req.URL.RawQuery = q.Encode()
			}
		}
		next.ServeHTTP(w, req)
	})
}

// Requests returns "METHOD /path?query" of every request so far but
// /healthz, as the client sent them.
func (r *Relay) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...)
}

// SetHook runs hook before each request (but /healthz) reaches the API.
func (r *Relay) SetHook(hook func(req *http.Request)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = hook
}

// SetPageLimit caps the records one GET /v1/audit returns below what the
// client asked for, as a relay may (0: no cap).
func (r *Relay) SetPageLimit(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pageLimit = n
}

// Config returns the client configuration `patchbay login` would save for
// the API token secret of name with role.
func (r *Relay) Config(secret, name, role string) client.Config {
	return client.Config{
		Server:        r.URL,
		Token:         secret,
		CAPEM:         string(r.CA.CertPEM),
		CAFingerprint: r.Fingerprint,
		Name:          name,
		Role:          role,
	}
}

// Admin and Viewer return the configurations of the two tokens New mints.
func (r *Relay) Admin() client.Config  { return r.Config(r.AdminToken, AdminName, apiv1.RoleAdmin) }
func (r *Relay) Viewer() client.Config { return r.Config(r.ViewerToken, ViewerName, apiv1.RoleViewer) }

// Enroll puts agent a into the store as enrolling it with a one-use token
// scoped to tags would, at the API's time. A non-zero a.LastSeen is then
// stored as its last connection, and a non-zero a.RevokedAt revokes it.
func (r *Relay) Enroll(t testing.TB, a store.Agent, tags map[string]string) store.Agent {
	t.Helper()
	ctx, now := context.Background(), r.API.Now()
	_, hash := api.NewSecret(api.PrefixEnroll)
	tok := store.EnrollToken{ID: store.NewID(), Hash: hash, Tags: tags, UsesAllowed: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := r.Store.CreateEnrollToken(ctx, tok); err != nil {
		t.Fatalf("create an enrollment token for %s: %v", a.Hostname, err)
	}
	lastSeen, revokedAt := a.LastSeen, a.RevokedAt
	a, _, err := r.Store.EnrollAgent(ctx, hash, a, now)
	if err != nil {
		t.Fatalf("enroll %s: %v", a.Hostname, err)
	}
	if !lastSeen.IsZero() {
		if err := r.Store.TouchLastSeen(ctx, []string{a.ID}, lastSeen); err != nil {
			t.Fatalf("agent %s last seen: %v", a.Hostname, err)
		}
	}
	if !revokedAt.IsZero() {
		if err := r.Store.RevokeAgent(ctx, a.ID, revokedAt); err != nil {
			t.Fatalf("revoke %s: %v", a.Hostname, err)
		}
	}
	return a
}

// AppendAudit appends a correctly chained audit record through the store.
func (r *Relay) AppendAudit(t testing.TB, at time.Time, actor, action, target string, detail map[string]string) audit.Record {
	t.Helper()
	rec, err := r.Store.AppendAudit(context.Background(), audit.Record{Time: at, Actor: actor, Action: action, Target: target, Detail: detail})
	if err != nil {
		t.Fatalf("append audit record %s: %v", action, err)
	}
	return rec
}

// Record returns the stored audit record seq.
func (r *Relay) Record(t testing.TB, seq int64) audit.Record {
	t.Helper()
	recs, err := r.Store.ListAudit(context.Background(), seq-1, 1)
	if err != nil || len(recs) != 1 || recs[0].Seq != seq {
		t.Fatalf("read audit record %d: %v (%d records)", seq, err, len(recs))
	}
	return recs[0]
}

// Tamper runs query on the relay's database through a connection of its
// own, as someone with write access to the file would, bypassing the store.
func (r *Relay) Tamper(t testing.TB, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+r.DBPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("tamper with the relay's database: %s: %v", query, err)
	}
}
