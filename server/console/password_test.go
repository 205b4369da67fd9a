package console_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/server/account"
	"github.com/patchbay/patchbay/server/console"
	"github.com/patchbay/patchbay/server/store"
	"github.com/pquerna/otp/totp"
)

// The password form: a user's password (and TOTP code) opens a session
// with the user's name and role; a wrong password or reused code gets the
// same 401; a missing code asks for one without counting a failure.
func TestPasswordLogin(t *testing.T) {
	r := newRelay(t)
	ctx := context.Background()
	hash, err := account.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := account.NewTOTP("Patchbay", "erin")
	u := store.User{ID: store.NewID(), Name: "erin", Role: "technician", PasswordHash: hash}
	if err := r.st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	post := func(user, pw, code string) answer {
		body, _ := json.Marshal(console.LoginRequest{Method: "password", User: user, Secret: pw, Code: code})
		return r.do("POST", "/console/login", "", string(body), "Origin", r.origin())
	}
	a := post("Erin", "correct horse battery", "")
	if a.status != 200 || a.cookie == "" || !strings.Contains(a.body, `"name":"erin"`) || !strings.Contains(a.body, `"method":"password"`) {
		t.Fatalf("password login: %d %s", a.status, a.body)
	}
	if got := r.do("GET", "/v1/agents", a.cookie, "", "Origin", r.origin()); got.status != 200 {
		t.Errorf("the session lists agents: %d %s", got.status, got.body)
	}
	wrong := post("erin", "correct horse batterY", "")
	nobody := post("nobody", "correct horse battery", "")
	if wrong.status != 401 || nobody.status != 401 || wrong.body != nobody.body {
		t.Errorf("wrong password %d %s / unknown user %d %s: want the same 401", wrong.status, wrong.body, nobody.status, nobody.body)
	}

	// With TOTP on: a code is asked for, works once.
	if err := r.st.SetUserTOTPPending(ctx, u.ID, e.Secret, r.clock.now()); err != nil {
		t.Fatal(err)
	}
	if err := r.st.ConfirmUserTOTP(ctx, u.ID, e.Secret, 0, nil, r.clock.now()); err != nil {
		t.Fatal(err)
	}
	if a := post("erin", "correct horse battery", ""); a.status != 401 || !strings.Contains(a.body, "totp_required") {
		t.Errorf("no code: %d %s", a.status, a.body)
	}
	code, _ := totp.GenerateCode(e.Secret, r.clock.now())
	if a := post("erin", "correct horse battery", code); a.status != 200 {
		t.Fatalf("with a code: %d %s", a.status, a.body)
	}
	if a := post("erin", "correct horse battery", code); a.status != 401 || a.body != wrong.body {
		t.Errorf("the same code again: %d %s", a.status, a.body)
	}

	// Disabling the user ends the browser session at its next request.
	if err := r.st.SetUserDisabled(ctx, u.ID, true, r.clock.now()); err != nil {
		t.Fatal(err)
	}
	if got := r.do("GET", "/v1/agents", a.cookie, "", "Origin", r.origin()); got.status != 401 {
		t.Errorf("a disabled user's session: %d %s", got.status, got.body)
	}
}
