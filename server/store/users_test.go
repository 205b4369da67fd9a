package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestUsers(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	u := User{ID: NewID(), Name: "alice", Role: "technician", PasswordHash: "$argon2id$x", CreatedAt: ts}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, User{ID: NewID(), Name: "alice", Role: "viewer"}); !errors.Is(err, ErrUserExists) {
		t.Fatalf("second alice: %v, want ErrUserExists", err)
	}
	got, err := s.GetUserByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := u
	want.Source, want.UpdatedAt = SourceLocal, ts
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	// Found by name (any case), ID and ID prefix.
	for _, ref := range []string{"alice", "ALICE", u.ID, u.ID[:8]} {
		found, err := s.FindUsers(ctx, ref, 5)
		if err != nil || len(found) != 1 || found[0].ID != u.ID {
			t.Errorf("FindUsers(%q) = %v, %v", ref, found, err)
		}
	}
	if found, err := s.FindUsers(ctx, "bob", 5); err != nil || len(found) != 0 {
		t.Errorf("FindUsers(bob) = %v, %v", found, err)
	}

	later := ts.Add(time.Hour)
	if err := s.SetUserPassword(ctx, u.ID, "$argon2id$y", later); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserPassword(ctx, "nope", "x", later); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	got, _ = s.GetUser(ctx, u.ID)
	if got.PasswordHash != "$argon2id$y" || !got.UpdatedAt.Equal(later) {
		t.Errorf("after SetUserPassword: %+v", got)
	}

	// TOTP: pending, confirmed once, replay refused atomically.
	if err := s.SetUserTOTPPending(ctx, u.ID, "SECRET", later); err != nil {
		t.Fatal(err)
	}
	if err := s.ConfirmUserTOTP(ctx, u.ID, "OTHER", 100, nil, later); !errors.Is(err, ErrNotFound) {
		t.Errorf("confirming another secret: %v", err)
	}
	if err := s.ConfirmUserTOTP(ctx, u.ID, "SECRET", 100, []string{"h1", "h2"}, later); err != nil {
		t.Fatal(err)
	}
	if err := s.ConfirmUserTOTP(ctx, u.ID, "SECRET", 100, nil, later); !errors.Is(err, ErrNotFound) {
		t.Errorf("second confirmation: %v", err)
	}
	got, _ = s.GetUser(ctx, u.ID)
	if got.TOTPSecret != "SECRET" || got.TOTPPending != "" || got.TOTPLastStep != 100 || len(got.RecoveryHashes) != 2 {
		t.Errorf("after confirm: %+v", got)
	}
	for _, step := range []int64{99, 100} {
		if err := s.AcceptTOTPStep(ctx, u.ID, step); !errors.Is(err, ErrTOTPReplayed) {
			t.Errorf("step %d after 100: %v, want ErrTOTPReplayed", step, err)
		}
	}
	if err := s.AcceptTOTPStep(ctx, u.ID, 101); err != nil {
		t.Errorf("step 101: %v", err)
	}
	if err := s.AcceptTOTPStep(ctx, u.ID, 101); !errors.Is(err, ErrTOTPReplayed) {
		t.Errorf("step 101 twice: %v", err)
	}

	// Recovery codes work once each.
	if err := s.UseRecoveryCode(ctx, u.ID, "h1", later); err != nil {
		t.Fatal(err)
	}
	if err := s.UseRecoveryCode(ctx, u.ID, "h1", later); !errors.Is(err, ErrNotFound) {
		t.Errorf("h1 twice: %v", err)
	}
	if err := s.UseRecoveryCode(ctx, u.ID, "nope", later); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown code: %v", err)
	}
	got, _ = s.GetUser(ctx, u.ID)
	if !reflect.DeepEqual(got.RecoveryHashes, []string{"h2"}) {
		t.Errorf("recovery hashes after one use: %v", got.RecoveryHashes)
	}
	if err := s.ClearUserTOTP(ctx, u.ID, later); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetUser(ctx, u.ID)
	if got.TOTPSecret != "" || got.RecoveryHashes != nil || got.TOTPLastStep != 101 {
		t.Errorf("after clear: %+v (the last step must stay)", got)
	}

	list, err := s.ListUsers(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
}

// A user's tokens follow the user: disabled or deleted stops them at once,
// and their role is never above the user's.
func TestUserTokens(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	u := User{ID: NewID(), Name: "bob", Role: "viewer", CreatedAt: ts}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	legacy := APIToken{ID: NewID(), Hash: "legacy", Role: "admin", Name: "ops", CreatedAt: ts}
	session := APIToken{ID: NewID(), Hash: "session", Role: "viewer", Name: "bob", CreatedAt: ts, UserID: u.ID, Kind: KindSession}
	auto := APIToken{ID: NewID(), Hash: "auto", Role: "admin", Name: "bob-script", CreatedAt: ts, UserID: u.ID}
	for _, tok := range []APIToken{legacy, session, auto} {
		if err := s.CreateAPIToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	now := ts.Add(time.Minute)
	got, err := s.LookupAPIToken(ctx, "auto", now)
	if err != nil || got.Role != "viewer" || got.UserName != "bob" || got.UserID != u.ID {
		t.Errorf("auto token of a viewer: %+v %v, want role viewer, user bob", got, err)
	}
	if got, err := s.LookupAPIToken(ctx, "legacy", now); err != nil || got.Role != "admin" || got.UserID != "" {
		t.Errorf("legacy token: %+v %v", got, err)
	}
	list, _ := s.ListAPITokens(ctx)
	if len(list) != 3 {
		t.Fatalf("list: %d tokens", len(list))
	}
	for _, tok := range list {
		if (tok.UserID != "") != (tok.UserName == "bob") {
			t.Errorf("listed %s: user %q %q", tok.Name, tok.UserID, tok.UserName)
		}
	}

	if err := s.SetUserDisabled(ctx, u.ID, true, now); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"session", "auto"} {
		if _, err := s.LookupAPIToken(ctx, h, now); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s token of a disabled user: %v, want ErrNotFound", h, err)
		}
	}
	if _, err := s.LookupAPIToken(ctx, "legacy", now); err != nil {
		t.Errorf("legacy token after disabling bob: %v", err)
	}
	if err := s.SetUserDisabled(ctx, u.ID, false, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupAPIToken(ctx, "session", now); err != nil {
		t.Errorf("session token after enabling: %v", err)
	}

	if n, err := s.RevokeUserSessions(ctx, u.ID, "", now); err != nil || len(n) != 1 {
		t.Errorf("revoke sessions: %q %v, want 1 ID", n, err)
	}
	if _, err := s.LookupAPIToken(ctx, "auto", now); err != nil {
		t.Errorf("an automation token after revoking sessions: %v", err)
	}
	if err := s.DeleteUser(ctx, u.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupAPIToken(ctx, "auto", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of a deleted user: %v", err)
	}
	if err := s.DeleteUser(ctx, u.ID, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

func TestSettings(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if v, err := s.Setting(ctx, SettingRequireTOTP); err != nil || v != "" {
		t.Fatalf("unset: %q %v", v, err)
	}
	for _, v := range []string{"on", "off"} {
		if err := s.SetSetting(ctx, SettingRequireTOTP, v, ts); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Setting(ctx, SettingRequireTOTP); err != nil || got != v {
			t.Errorf("after set %q: %q %v", v, got, err)
		}
	}
}
