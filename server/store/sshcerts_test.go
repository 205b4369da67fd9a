package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestSSHCertsRevokeAndPrune(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	rec := func(serial uint64, token string, issued time.Time, ttl time.Duration) SSHCert {
		t.Helper()
		c := SSHCert{Serial: serial, KeyID: "tech-" + token, TokenID: token, IssuedAt: issued, ValidBefore: issued.Add(ttl)}
		if err := s.RecordSSHCert(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The largest serial: PostgreSQL's BIGINT could not hold it as a number.
	big := rec(1<<64-1, "A", ts, 8*time.Hour)
	short := rec(2, "A", ts, time.Hour)
	rec(3, "B", ts, 8*time.Hour)
	if err := s.RecordSSHCert(ctx, SSHCert{Serial: 3, KeyID: "x", TokenID: "C", IssuedAt: ts, ValidBefore: ts.Add(time.Hour)}); err == nil {
		t.Error("a serial recorded twice")
	}
	if err := s.RecordSSHCert(ctx, SSHCert{Serial: 9, KeyID: "x", IssuedAt: ts, ValidBefore: ts.Add(time.Hour)}); err == nil {
		t.Error("a certificate without its token recorded")
	}

	now := ts.Add(time.Minute)
	got, err := s.RevokeSSHCertsOfTokens(ctx, []string{"A", "nobody"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Serial != 2 || got[1].Serial != big.Serial || got[1].KeyID != "tech-A" ||
		!got[1].RevokedAt.Equal(now) || !got[1].ValidBefore.Equal(big.ValidBefore) {
		t.Fatalf("revoked %+v", got)
	}
	// Again, later: the first revocation time stays; the list is the same.
	again, err := s.RevokeSSHCertsOfTokens(ctx, []string{"A"}, now.Add(time.Minute))
	if err != nil || len(again) != 2 || !again[0].RevokedAt.Equal(now) {
		t.Fatalf("revoked again: %+v %v", again, err)
	}
	all, err := s.RevokedSSHCerts(ctx, now)
	if err != nil || len(all) != 2 {
		t.Fatalf("revoked list %+v %v", all, err)
	}
	// Once the short one has expired it is no longer listed...
	later := short.ValidBefore.Add(time.Second)
	if all, err = s.RevokedSSHCerts(ctx, later); err != nil || len(all) != 1 || all[0].Serial != big.Serial {
		t.Fatalf("revoked list after an expiry %+v %v", all, err)
	}
	// ... nor revoked again, and a token's expired certificates are not revoked at all.
	rec(4, "D", ts, time.Hour)
	if got, err := s.RevokeSSHCertsOfTokens(ctx, []string{"D"}, later); err != nil || got != nil {
		t.Fatalf("revoking expired certificates: %+v %v", got, err)
	}
	if list, _ := s.SSHCertsOfToken(ctx, "D"); len(list) != 1 || !list[0].RevokedAt.IsZero() {
		t.Fatalf("an expired certificate was marked revoked: %+v", list)
	}
	// B was never touched.
	if list, _ := s.SSHCertsOfToken(ctx, "B"); len(list) != 1 || !list[0].RevokedAt.IsZero() {
		t.Fatalf("token B's certificate: %+v", list)
	}

	// Issuing a certificate prunes the rows of expired ones.
	rec(5, "E", later, time.Hour)
	for tok, want := range map[string]int{"A": 1, "D": 0, "B": 1, "E": 1} {
		if list, err := s.SSHCertsOfToken(ctx, tok); err != nil || len(list) != want {
			t.Errorf("after pruning, token %s has %d certificates (%v), want %d", tok, len(list), err, want)
		}
	}
}

func TestSSHCertsRevokeManyTokens(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	var ids []string
	for i := range 2*maxTokensPerQuery + 3 {
		id := fmt.Sprintf("tok-%04d", i)
		ids = append(ids, id)
		if i%100 == 0 {
			if err := s.RecordSSHCert(ctx, SSHCert{Serial: uint64(i) + 1, KeyID: "k", TokenID: id, IssuedAt: ts, ValidBefore: ts.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := s.RevokeSSHCertsOfTokens(ctx, ids, ts)
	if err != nil || len(got) != 11 {
		t.Fatalf("revoked %d certificates of %d tokens: %v", len(got), len(ids), err)
	}
}

func TestSessionRemembersToken(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	id := NewID()
	if err := s.CreateSession(ctx, Session{ID: id, AgentID: "a", Technician: "alice", TokenID: "tok-1", RequestedAt: ts}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSession(ctx, id)
	if err != nil || got.TokenID != "tok-1" {
		t.Fatalf("session %+v %v", got, err)
	}
}

func TestAPITokenActive(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for _, tok := range []APIToken{
		{ID: "live", Hash: "h1", Role: "technician", Name: "alice", CreatedAt: ts},
		{ID: "expiring", Hash: "h2", Role: "technician", Name: "bob", CreatedAt: ts, ExpiresAt: ts.Add(time.Hour)},
	} {
		if err := s.CreateAPIToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeAPIToken(ctx, "live", ts.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"live": false, "expiring": true, "unknown": false} {
		if got, err := s.APITokenActive(ctx, id, ts.Add(2*time.Minute)); err != nil || got != want {
			t.Errorf("APITokenActive(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
	if got, _ := s.APITokenActive(ctx, "expiring", ts.Add(time.Hour)); got {
		t.Error("an expired token is active")
	}
}
