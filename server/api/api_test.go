package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/bus"
	"github.com/patchbay/patchbay/server/hub"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// testAPI is the API over a real SQLite store, CA and hub.
func testAPI(t *testing.T) (*API, http.Handler, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ca, err := certs.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(&bus.Local{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &API{Store: st, Hub: h, CA: ca, Log: zerolog.Nop()}
	mux := http.NewServeMux()
	a.Register(mux)
	tokens := map[string]string{}
	for _, role := range []string{apiv1.RoleViewer, apiv1.RoleTechnician, apiv1.RoleAdmin} {
		secret, _, err := MintAPIToken(ctx, st, "test", role, role+"-user", 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = secret
	}
	return a, mux, tokens
}

func do(h http.Handler, method, path, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRequests(t *testing.T) {
	_, h, tok := testAPI(t)
	huge := `{"tags":{"a":"` + strings.Repeat("x", maxBody) + `"}}`
	tests := []struct {
		name, method, path, role, body string
		status                         int
		contains                       string
	}{
		{"no token", "GET", "/v1/agents", "", "", 401, "patchbay login"},
		{"bad token", "GET", "/v1/agents", "bogus", "", 401, "unknown, expired or revoked"},
		{"viewer lists", "GET", "/v1/agents", apiv1.RoleViewer, "", 200, "[]"},
		{"viewer cannot create tokens", "POST", "/v1/enroll-tokens", apiv1.RoleViewer, `{}`, 403, "admin role"},
		{"technician cannot revoke", "POST", "/v1/agents/x/revoke", apiv1.RoleTechnician, "", 403, "admin role"},
		{"bad selector", "GET", "/v1/agents?target=site%3D%3D", apiv1.RoleViewer, "", 400, "selector"},
		{"unknown agent", "GET", "/v1/agents/nope", apiv1.RoleViewer, "", 404, "no agent"},
		{"token created", "POST", "/v1/enroll-tokens", apiv1.RoleAdmin, `{"tags":{"site":"paris"},"uses":3,"ttl":"7d"}`, 201, `"token": "pbe_`},
		{"unknown field", "POST", "/v1/enroll-tokens", apiv1.RoleAdmin, `{"tagz":{}}`, 400, "unknown field"},
		{"trailing data", "POST", "/v1/enroll-tokens", apiv1.RoleAdmin, `{} {}`, 400, "trailing"},
		{"not json", "POST", "/v1/enroll-tokens", apiv1.RoleAdmin, `uses=3`, 400, "request body"},
		{"oversized body", "POST", "/v1/enroll-tokens", apiv1.RoleAdmin, huge, 413, "over"},
		{"bad ttl", "POST", "/v1/enroll-tokens", apiv1.RoleAdmin, `{"ttl":"forever"}`, 400, "ttl"},
		{"ttl too long", "POST", "/v1/enroll-tokens", apiv1.RoleAdmin, `{"ttl":"9999d"}`, 400, "between"},
		{"negative uses", "POST", "/v1/enroll-tokens", apiv1.RoleAdmin, `{"uses":-1}`, 400, "uses"},
		{"bad tag", "POST", "/v1/enroll-tokens", apiv1.RoleAdmin, `{"tags":{"a b":"c"}}`, 400, "tag key"},
		{"bad role", "POST", "/v1/api-tokens", apiv1.RoleAdmin, `{"role":"root","name":"x"}`, 400, "role"},
		{"bad name", "POST", "/v1/api-tokens", apiv1.RoleAdmin, `{"role":"viewer","name":"a b"}`, 400, "name"},
		{"revoke unknown token", "DELETE", "/v1/enroll-tokens/nope", apiv1.RoleAdmin, "", 404, "no enrollment token"},
		{"audit bad limit", "GET", "/v1/audit?limit=0", apiv1.RoleViewer, "", 400, "limit"},
		{"enroll bad token", "POST", "/v1/enroll", "", `{"token":"nope","csr":""}`, 401, "unknown"},
		{"enroll garbage csr, unknown token: the token is checked first", "POST", "/v1/enroll", "", `{"token":"pbe_x","csr":"AAAA"}`, 401, "token unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := tok[tt.role]
			if tt.role == "bogus" {
				token = "pbt_bogus"
			}
			rec := do(h, tt.method, tt.path, token, tt.body)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.contains) {
				t.Fatalf("%s %s = %d %s; want %d containing %q", tt.method, tt.path, rec.Code, rec.Body, tt.status, tt.contains)
			}
		})
	}
}

// A failed enrollment spends nothing and stores nothing.
func TestEnrollFailureChangesNothing(t *testing.T) {
	a, h, tok := testAPI(t)
	rec := do(h, "POST", "/v1/enroll-tokens", tok[apiv1.RoleAdmin], `{"uses":1}`)
	var et apiv1.EnrollToken
	json.Unmarshal(rec.Body.Bytes(), &et)
	body, _ := json.Marshal(apiv1.EnrollRequest{Token: et.Token, CSR: []byte("not a csr")})
	if rec := do(h, "POST", "/v1/enroll", "", string(body)); rec.Code != 400 {
		t.Fatalf("garbage CSR: %d %s", rec.Code, rec.Body)
	}
	toks, _ := a.Store.ListEnrollTokens(context.Background())
	agents, _ := a.Store.ListAgents(context.Background())
	if toks[0].Uses != 0 || len(agents) != 0 {
		t.Fatalf("failed enrollment changed state: uses %d, %d agents", toks[0].Uses, len(agents))
	}
	key, _ := certs.NewKey()
	csr, _ := certs.CreateCSR(key, "ignored")
	body, _ = json.Marshal(apiv1.EnrollRequest{Token: et.Token, CSR: csr, Hostname: "pc-1"})
	if rec := do(h, "POST", "/v1/enroll", "", string(body)); rec.Code != 200 {
		t.Fatalf("good enrollment: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/enroll", "", string(body)); rec.Code != 403 || !strings.Contains(rec.Body.String(), "no uses left") {
		t.Fatalf("second use of a one-use token: %d %s", rec.Code, rec.Body)
	}
}

// A refused enrollment names the token's own numbers, and a request whose
// token is unusable is refused before its CSR is even looked at (it costs
// no CA signature): a garbage CSR with a bad token gets the token's error.
func TestEnrollRefusalsNameTheToken(t *testing.T) {
	a, h, tok := testAPI(t)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	a.Now = func() time.Time { return now }
	create := func(body string) apiv1.EnrollToken {
		t.Helper()
		rec := do(h, "POST", "/v1/enroll-tokens", tok[apiv1.RoleAdmin], body)
		var et apiv1.EnrollToken
		if err := json.Unmarshal(rec.Body.Bytes(), &et); err != nil || rec.Code != 201 {
			t.Fatalf("create token: %d %s", rec.Code, rec.Body)
		}
		return et
	}
	enroll := func(token string, csr []byte) *httptest.ResponseRecorder {
		body, _ := json.Marshal(apiv1.EnrollRequest{Token: token, CSR: csr, Hostname: "pc-1"})
		return do(h, "POST", "/v1/enroll", "", string(body))
	}
	key, _ := certs.NewKey()
	csr, _ := certs.CreateCSR(key, "ignored")

	if rec := enroll("pbe_unknown", []byte("not a csr")); rec.Code != 401 || !strings.Contains(rec.Body.String(), "token unknown") {
		t.Fatalf("unknown token with a garbage CSR: %d %s; want 401 naming the token (checked before the CSR)", rec.Code, rec.Body)
	}
	once := create(`{"uses":1}`)
	if rec := enroll(once.Token, csr); rec.Code != 200 {
		t.Fatalf("first use: %d %s", rec.Code, rec.Body)
	}
	if rec := enroll(once.Token, []byte("not a csr")); rec.Code != 403 || !strings.Contains(rec.Body.String(), "(1 of 1 used)") {
		t.Fatalf("used-up token: %d %s; want 403 saying 1 of 1 used", rec.Code, rec.Body)
	}
	short := create(`{"uses":5,"ttl":"1h"}`)
	now = now.Add(2 * time.Hour)
	want := "expired at 2026-12-06T13:00:00Z"
	if rec := enroll(short.Token, csr); rec.Code != 403 || !strings.Contains(rec.Body.String(), want) {
		t.Fatalf("expired token: %d %s; want 403 saying %q", rec.Code, rec.Body, want)
	}
	agents, _ := a.Store.ListAgents(context.Background())
	if len(agents) != 1 {
		t.Fatalf("%d agents enrolled; want 1 (refusals change nothing)", len(agents))
	}
}
