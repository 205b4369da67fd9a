package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/account"
	"github.com/patchbay/patchbay/server/authlimit"
	"github.com/patchbay/patchbay/server/store"
	"github.com/pquerna/otp/totp"
)

// clock is a settable time, so TOTP codes are known.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// userAPI is testAPI with a fixed clock and a limiter.
func userAPI(t *testing.T) (*API, http.Handler, map[string]string, *clock) {
	a, h, tok := testAPI(t)
	c := &clock{t: time.Date(2026, 12, 6, 10, 0, 5, 0, time.UTC)}
	a.Now = c.now
	a.Limiter = authlimit.New(authlimit.Config{UserBurst: 3, UserEvery: time.Minute})
	return a, h, tok, c
}

// call sends a request from src with token and decodes a 2xx answer into out.
func call(t *testing.T, h http.Handler, src, method, path, token string, in, out any) *httptest.ResponseRecorder {
	t.Helper()
	var body string
	if in != nil {
		b, _ := json.Marshal(in)
		body = string(b)
	}
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = src
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if out != nil && rec.Code/100 == 2 {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, rec.Body, err)
		}
	}
	return rec
}

const home = "192.0.2.10:5000"

func login(t *testing.T, h http.Handler, src, user, pw, code string) (apiv1.PasswordLogin, *httptest.ResponseRecorder) {
	t.Helper()
	var out apiv1.PasswordLogin
	rec := call(t, h, src, "POST", "/v1/login/password", "", apiv1.PasswordLoginRequest{User: user, Password: pw, Code: code}, &out)
	return out, rec
}

func TestPasswordLogin(t *testing.T) {
	a, h, tok, clk := userAPI(t)
	admin := tok[apiv1.RoleAdmin]
	var u apiv1.User
	if rec := call(t, h, home, "POST", "/v1/users", admin, apiv1.UserRequest{Name: "Alice", Role: "technician"}, &u); rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	if u.Name != "alice" || u.Password == "" || u.TOTP != "off" {
		t.Fatalf("created %+v: want the name lower-cased and a generated password", u)
	}
	if rec := call(t, h, home, "POST", "/v1/users", admin, apiv1.UserRequest{Name: "alice", Role: "viewer"}, nil); rec.Code != 409 {
		t.Errorf("second alice: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/users", admin, apiv1.UserRequest{Name: "bob", Role: "viewer", Password: "short"}, nil); rec.Code != 400 || !strings.Contains(rec.Body.String(), "at least 12") {
		t.Errorf("short password: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/users", tok[apiv1.RoleTechnician], apiv1.UserRequest{Name: "eve", Role: "admin"}, nil); rec.Code != 403 {
		t.Errorf("technician creates a user: %d", rec.Code)
	}

	s, rec := login(t, h, home, "ALICE", u.Password, "")
	if rec.Code != 200 || s.Token == "" || s.Role != "technician" || s.User != "alice" || s.TOTPEnrolRequired {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	if want := clk.now().Add(SessionTTL); !s.ExpiresAt.Equal(want) {
		t.Errorf("session expires %v, want %v", s.ExpiresAt, want)
	}
	if rec := call(t, h, home, "GET", "/v1/agents", s.Token, nil, nil); rec.Code != 200 {
		t.Errorf("session lists agents: %d %s", rec.Code, rec.Body)
	}
	// Wrong password and unknown user: the same answer.
	_, wrong := login(t, h, home, "alice", "not the password", "")
	_, nobody := login(t, h, home, "mallory", "not the password", "")
	if wrong.Code != 401 || nobody.Code != 401 || wrong.Body.String() != nobody.Body.String() {
		t.Errorf("wrong password %d %s / unknown user %d %s: want the same 401", wrong.Code, wrong.Body, nobody.Code, nobody.Body)
	}

	// An API token made by the user belongs to them; disabling the user stops both.
	var at apiv1.APIToken
	call(t, h, home, "POST", "/v1/users", admin, apiv1.UserRequest{Name: "root", Role: "admin", Password: "correct horse battery"}, nil)
	rs, _ := login(t, h, home, "root", "correct horse battery", "")
	if rec := call(t, h, home, "POST", "/v1/api-tokens", rs.Token, apiv1.APITokenRequest{Role: "viewer", Name: "grafana"}, &at); rec.Code != 201 || at.User != "root" {
		t.Fatalf("user's api token: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/users/root/disable", rs.Token, nil, nil); rec.Code != 409 {
		t.Errorf("disable self: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/users/root/disable", admin, nil, nil); rec.Code != 200 {
		t.Fatalf("disable: %d %s", rec.Code, rec.Body)
	}
	for _, tk := range []string{rs.Token, at.Token} {
		if rec := call(t, h, home, "GET", "/v1/agents", tk, nil, nil); rec.Code != 401 {
			t.Errorf("token of a disabled user: %d %s", rec.Code, rec.Body)
		}
	}
	if _, rec := login(t, h, home, "root", "correct horse battery", ""); rec.Code != 401 {
		t.Errorf("disabled user logs in: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/users/root/enable", admin, nil, nil); rec.Code != 200 {
		t.Fatalf("enable: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "GET", "/v1/agents", at.Token, nil, nil); rec.Code != 200 {
		t.Errorf("token after enable: %d %s", rec.Code, rec.Body)
	}
	var list []apiv1.User
	call(t, h, home, "GET", "/v1/users", admin, nil, &list)
	if len(list) != 2 || list[0].Name != "alice" || list[1].Name != "root" {
		t.Errorf("list: %+v", list)
	}
	if rec := call(t, h, home, "DELETE", "/v1/users/"+list[1].ID[:13], admin, nil, nil); rec.Code != 204 {
		t.Fatalf("delete by ID prefix: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "GET", "/v1/agents", at.Token, nil, nil); rec.Code != 401 {
		t.Errorf("token of a deleted user: %d", rec.Code)
	}

	recs, _ := a.Store.ListAudit(context.Background(), 0, 1000)
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	for _, want := range []string{"user.create", "login.password", "user.disable", "user.enable", "user.delete"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("audit lacks %s: %v", want, actions)
		}
	}
}

// TOTP: enrol, confirm, code required, replay refused, recovery codes once.
func TestTOTPLogin(t *testing.T) {
	a, h, tok, clk := userAPI(t)
	const pw = "correct horse battery"
	call(t, h, home, "POST", "/v1/users", tok[apiv1.RoleAdmin], apiv1.UserRequest{Name: "alice", Role: "viewer", Password: pw}, nil)
	s, _ := login(t, h, home, "alice", pw, "")
	var e apiv1.TOTPEnrolment
	if rec := call(t, h, home, "POST", "/v1/account/totp", s.Token, nil, &e); rec.Code != 200 || !strings.HasPrefix(e.URI, "otpauth://totp/Patchbay:alice") {
		t.Fatalf("enrol: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/account/totp/confirm", s.Token, apiv1.TOTPConfirmRequest{Code: "000000"}, nil); rec.Code != 400 {
		t.Errorf("confirm with a wrong code: %d %s", rec.Code, rec.Body)
	}
	code, _ := totp.GenerateCode(e.Secret, clk.now())
	var conf apiv1.TOTPConfirmation
	if rec := call(t, h, home, "POST", "/v1/account/totp/confirm", s.Token, apiv1.TOTPConfirmRequest{Code: code}, &conf); rec.Code != 200 || len(conf.RecoveryCodes) != 10 {
		t.Fatalf("confirm: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/account/totp", s.Token, nil, nil); rec.Code != 409 {
		t.Errorf("enrol again: %d", rec.Code)
	}

	// No code: the relay asks for one (and says so in Code).
	if _, rec := login(t, h, home, "alice", pw, ""); rec.Code != 401 || !strings.Contains(rec.Body.String(), apiv1.ErrCodeTOTPRequired) {
		t.Fatalf("no code: %d %s", rec.Code, rec.Body)
	}
	// The confirmation's code is used up; the next period's works once.
	if _, rec := login(t, h, home, "alice", pw, code); rec.Code != 401 {
		t.Errorf("the confirmation code again: %d %s", rec.Code, rec.Body)
	}
	clk.add(30 * time.Second)
	code, _ = totp.GenerateCode(e.Secret, clk.now())
	if _, rec := login(t, h, home, "alice", pw, code); rec.Code != 200 {
		t.Fatalf("fresh code: %d %s", rec.Code, rec.Body)
	}
	_, again := login(t, h, home, "alice", pw, code)
	_, wrongPW := login(t, h, home, "alice", "wrong password!", code)
	if again.Code != 401 || again.Body.String() != wrongPW.Body.String() {
		t.Errorf("reused code %d %s / wrong password %d %s: want the same 401", again.Code, again.Body, wrongPW.Code, wrongPW.Body)
	}
	// A recovery code works once, in any case and with or without dashes.
	rc := strings.ToUpper(conf.RecoveryCodes[3])
	out, rec := login(t, h, home, "alice", pw, rc)
	if rec.Code != 200 || out.RecoveryCodesLeft == nil || *out.RecoveryCodesLeft != 9 {
		t.Fatalf("recovery code: %d %s", rec.Code, rec.Body)
	}
	if _, rec := login(t, h, home, "alice", pw, strings.ReplaceAll(conf.RecoveryCodes[3], "-", "")); rec.Code != 401 {
		t.Errorf("recovery code twice: %d %s", rec.Code, rec.Body)
	}
	// Turning TOTP off needs the password.
	if rec := call(t, h, home, "POST", "/v1/account/totp/disable", s.Token, apiv1.TOTPDisableRequest{Password: "nope"}, nil); rec.Code != 401 {
		t.Errorf("disable with a wrong password: %d", rec.Code)
	}
	if rec := call(t, h, home, "POST", "/v1/account/totp/disable", s.Token, apiv1.TOTPDisableRequest{Password: pw}, nil); rec.Code != 204 {
		t.Errorf("disable: %d %s", rec.Code, rec.Body)
	}
	if _, rec := login(t, h, home, "alice", pw, ""); rec.Code != 200 {
		t.Errorf("login after turning TOTP off: %d %s", rec.Code, rec.Body)
	}
	recs, _ := a.Store.ListAudit(context.Background(), 0, 1000)
	var all string
	for _, r := range recs {
		all += r.Action + " " + r.Detail["second_factor"] + "\n"
	}
	for _, want := range []string{"user.totp.enrol", "user.totp.confirm", "login.password totp", "login.password recovery code", "user.totp.disable"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit lacks %q:\n%s", want, all)
		}
	}
}

// With require-totp on, a user without TOTP logs in only to enrol it.
func TestRequireTOTP(t *testing.T) {
	_, h, tok, clk := userAPI(t)
	admin := tok[apiv1.RoleAdmin]
	const pw = "correct horse battery"
	call(t, h, home, "POST", "/v1/users", admin, apiv1.UserRequest{Name: "bob", Role: "technician", Password: pw}, nil)
	if rec := call(t, h, home, "PUT", "/v1/settings/require-totp", admin, apiv1.RequireTOTPRequest{Enabled: true}, nil); rec.Code != 200 {
		t.Fatalf("require-totp: %d %s", rec.Code, rec.Body)
	}
	s, rec := login(t, h, home, "bob", pw, "")
	if rec.Code != 200 || !s.TOTPEnrolRequired {
		t.Fatalf("login without TOTP: %d %s, want an enrolment session", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "GET", "/v1/agents", s.Token, nil, nil); rec.Code != 403 || !strings.Contains(rec.Body.String(), "totp enrol") {
		t.Errorf("enrolment session lists agents: %d %s", rec.Code, rec.Body)
	}
	var e apiv1.TOTPEnrolment
	call(t, h, home, "POST", "/v1/account/totp", s.Token, nil, &e)
	code, _ := totp.GenerateCode(e.Secret, clk.now())
	if rec := call(t, h, home, "POST", "/v1/account/totp/confirm", s.Token, apiv1.TOTPConfirmRequest{Code: code}, nil); rec.Code != 200 {
		t.Fatalf("confirm: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "GET", "/v1/agents", s.Token, nil, nil); rec.Code != 200 {
		t.Errorf("session after enrolling: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/account/totp/disable", s.Token, apiv1.TOTPDisableRequest{Password: pw}, nil); rec.Code != 409 {
		t.Errorf("turn off required TOTP: %d %s", rec.Code, rec.Body)
	}
	// An admin's reset with --totp: a new password, TOTP gone, sessions ended.
	var reset apiv1.User
	if rec := call(t, h, home, "POST", "/v1/users/bob/reset", admin, apiv1.UserResetRequest{ClearTOTP: true}, &reset); rec.Code != 200 || reset.Password == "" || reset.TOTP != "off" {
		t.Fatalf("reset: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "GET", "/v1/agents", s.Token, nil, nil); rec.Code != 401 {
		t.Errorf("session after reset: %d", rec.Code)
	}
	if s, rec := login(t, h, home, "bob", reset.Password, ""); rec.Code != 200 || !s.TOTPEnrolRequired {
		t.Errorf("login after reset: %d %s", rec.Code, rec.Body)
	}
}

// Wrong passwords throttle the user name from new sources (429 with
// Retry-After) but not from the source the user logged in from before.
func TestPasswordThrottle(t *testing.T) {
	_, h, tok, _ := userAPI(t)
	const pw = "correct horse battery"
	call(t, h, home, "POST", "/v1/users", tok[apiv1.RoleAdmin], apiv1.UserRequest{Name: "carol", Role: "viewer", Password: pw}, nil)
	if _, rec := login(t, h, home, "carol", pw, ""); rec.Code != 200 {
		t.Fatal(rec.Body)
	}
	for i, src := range []string{"198.51.100.1:1", "198.51.100.2:1", "198.51.100.3:1"} {
		if _, rec := login(t, h, src, "carol", "guess number "+src, ""); rec.Code != 401 {
			t.Fatalf("guess %d: %d", i, rec.Code)
		}
	}
	_, rec := login(t, h, "203.0.113.9:1", "carol", pw, "")
	if rec.Code != 429 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "user carol") {
		t.Fatalf("a new source after the user's burst: %d %s", rec.Code, rec.Body)
	}
	if _, rec := login(t, h, home, "carol", pw, ""); rec.Code != 200 {
		t.Errorf("the user's own source: %d %s", rec.Code, rec.Body)
	}
}

// A hash with older parameters still verifies and is replaced at login.
func TestPasswordRehash(t *testing.T) {
	a, h, _, _ := userAPI(t)
	old, _ := account.HashWith("correct horse battery", account.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	ctx := context.Background()
	a.Store.CreateUser(ctx, store.User{ID: store.NewID(), Name: "dave", Role: "viewer", PasswordHash: old})
	if _, rec := login(t, h, home, "dave", "correct horse battery", ""); rec.Code != 200 {
		t.Fatalf("login with an old hash: %d %s", rec.Code, rec.Body)
	}
	u, _ := a.Store.GetUserByName(ctx, "dave")
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=65536,t=2,p=1$") {
		t.Errorf("hash after login: %s", u.PasswordHash)
	}
}
