package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestOIDCUsersAndHandoffs(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	const iss = "https://idp.example.com/"
	if _, err := s.OIDCUser(ctx, iss, "sub-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown identity: %v, want ErrNotFound", err)
	}
	u := User{ID: NewID(), Name: "dana@example.com", Role: "technician", Source: SourceOIDC, CreatedAt: ts, UpdatedAt: ts}
	id := OIDCIdentity{Issuer: iss, Subject: "sub-1", Email: "dana@example.com", Groups: []string{"helpdesk"}}
	if err := s.CreateOIDCUser(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	got, err := s.OIDCUser(ctx, iss, "sub-1")
	if err != nil || got.ID != u.ID || got.Source != SourceOIDC || got.Role != "technician" {
		t.Fatalf("OIDCUser = %+v, %v", got, err)
	}
	// Same name from another identity: refused.
	if err := s.CreateOIDCUser(ctx, User{ID: NewID(), Name: u.Name, Role: "viewer", Source: SourceOIDC, CreatedAt: ts},
		OIDCIdentity{Issuer: iss, Subject: "sub-2"}); !errors.Is(err, ErrUserExists) {
		t.Fatalf("taken name: %v, want ErrUserExists", err)
	}
	if err := s.RecordOIDCLogin(ctx, iss, "sub-1", "dana@example.com", nil, ts.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserRole(ctx, u.ID, "viewer", ts.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.OIDCUser(ctx, iss, "sub-1"); got.Role != "viewer" {
		t.Fatalf("role after SetUserRole = %q", got.Role)
	}
	// Tokens: all revoked.
	for _, kind := range []string{KindSession, KindAPI} {
		if err := s.CreateAPIToken(ctx, APIToken{ID: NewID(), Hash: "h-" + kind, Role: "viewer", Name: "t", CreatedAt: ts,
			UserID: u.ID, Kind: kind}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.RevokeUserTokens(ctx, u.ID, ts.Add(time.Hour)); err != nil || len(n) != 2 {
		t.Fatalf("RevokeUserTokens = %q, %v; want 2 IDs", n, err)
	}
	// A deleted user's identity is stale: the next sign-in makes a new user.
	if err := s.DeleteUser(ctx, u.ID, ts.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OIDCUser(ctx, iss, "sub-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("identity of a deleted user: %v, want ErrNotFound", err)
	}
	u2 := User{ID: NewID(), Name: "dana@example.com", Role: "viewer", Source: SourceOIDC, CreatedAt: ts}
	if err := s.CreateOIDCUser(ctx, u2, id); err != nil {
		t.Fatalf("re-create after delete: %v", err)
	}

	// Handoffs work once and not after expiry.
	h := SSOHandoff{Hash: "code-hash", UserID: u2.ID, Challenge: "ch", Detail: map[string]string{"email": "dana@example.com"},
		CreatedAt: ts, ExpiresAt: ts.Add(time.Minute)}
	if err := s.CreateSSOHandoff(ctx, h); err != nil {
		t.Fatal(err)
	}
	got2, err := s.ConsumeSSOHandoff(ctx, "code-hash", ts.Add(time.Second))
	if err != nil || got2.UserID != u2.ID || got2.Challenge != "ch" || got2.Detail["email"] != "dana@example.com" {
		t.Fatalf("consume = %+v, %v", got2, err)
	}
	if _, err := s.ConsumeSSOHandoff(ctx, "code-hash", ts.Add(time.Second)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second consume: %v, want ErrNotFound", err)
	}
	h.Hash = "late"
	if err := s.CreateSSOHandoff(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeSSOHandoff(ctx, "late", ts.Add(time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired consume: %v, want ErrNotFound", err)
	}
}
