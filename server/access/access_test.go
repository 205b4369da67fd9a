package access

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/bus"
	"github.com/patchbay/patchbay/server/hub"
	"github.com/patchbay/patchbay/server/sessions"
	"github.com/patchbay/patchbay/server/store"
)

// node is one relay node's access ender over a shared store and bus.
func node(t *testing.T, st *store.Store, b *bus.Local, now func() time.Time) *Ender {
	t.Helper()
	h, err := hub.New(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	br := sessions.New(sessions.Config{Store: st, Links: h, Log: zerolog.Nop()})
	e, err := New(context.Background(), Config{Store: st, Bus: b, Agents: h, Sessions: br, Log: zerolog.Nop(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// greeted decodes what Greet sends.
func greeted(t *testing.T, e *Ender) []wire.RevokedCert {
	t.Helper()
	var out []wire.RevokedCert
	err := e.Greet(func(env wire.Envelope) error {
		var m wire.SSHRevoked
		if err := wire.DecodeBody(env, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Certs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEveryNodeLearnsAndForgets(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx := context.Background()
	for i, tok := range []string{"tok-a", "tok-a", "tok-b"} {
		ttl := time.Hour
		if i == 1 {
			ttl = 8 * time.Hour
		}
		if err := st.RecordSSHCert(ctx, store.SSHCert{Serial: uint64(i) + 100, KeyID: "alice", TokenID: tok, IssuedAt: now, ValidBefore: now.Add(ttl)}); err != nil {
			t.Fatal(err)
		}
	}
	b := &bus.Local{}
	one, two := node(t, st, b, clock), node(t, st, b, clock)
	if got := greeted(t, one); len(got) != 0 {
		t.Fatalf("greeting before any revocation: %+v", got)
	}
	res, err := one.EndAccess(ctx, []string{"tok-a"}, "access revoked: API token alice was revoked by admin")
	if err != nil || res.Certificates != 2 {
		t.Fatalf("EndAccess: %+v %v", res, err)
	}
	// Both nodes know it (the bus), and a node started later (the store).
	three := node(t, st, b, clock)
	for i, e := range []*Ender{one, two, three} {
		if got := greeted(t, e); len(got) != 2 {
			t.Errorf("node %d greets with %+v, want tok-a's 2 certificates", i+1, got)
		}
	}
	// After the first expires, only the second is sent; after both, nothing.
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if got := greeted(t, two); len(got) != 1 || got[0].Serial != 101 {
		t.Errorf("after an expiry: %+v", got)
	}
	mu.Lock()
	now = now.Add(8 * time.Hour)
	mu.Unlock()
	if got := greeted(t, two); len(got) != 0 || len(two.Revoked()) != 0 {
		t.Errorf("after every expiry: %+v", got)
	}
	if _, err := one.EndAccess(ctx, make([]string, MaxTokens+1), "x"); err == nil {
		t.Error("an unbounded token list was taken")
	}
}
