package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Relays sharing a PostgreSQL database: the relays of a tier hold it
// together; a relay alone (no NATS) is refused beside them, and a tier
// relay beside it; a relay alone excludes another; a lock released (or
// dropped with a dead relay's connection) frees the database at once. On
// SQLite nothing is locked: each relay has its database file to itself.
func TestRelayLock(t *testing.T) {
	s, url := newStore(t)
	other := openTestStore(t, url) // another relay on the same database
	ctx := context.Background()

	a, err := s.LockRelay(ctx, true, nil)
	if err != nil {
		t.Fatalf("a relay of a tier: %v", err)
	}
	b, err := other.LockRelay(ctx, true, nil)
	if err != nil {
		t.Fatalf("a second relay of the tier: %v", err)
	}
	// The relays' lock must not stand in the way of their own writes: a
	// software list (which takes a transaction lock on PostgreSQL) is
	// stored while the tier holds it.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	_, err = s.PutSoftware(wctx, mkAgents(t, s, 1)[0], "h1", []Package{{"openssl", "3.0.11-1", "dpkg"}}, ts)
	cancel()
	if err != nil {
		t.Fatalf("store a software list while the tier's relays hold their lock: %v", err)
	}
	alone, err := other.LockRelay(ctx, false, nil)
	if engine == dialectSQLite {
		if err != nil {
			t.Fatalf("SQLite: %v", err)
		}
		alone.Close()
		a.Close()
		b.Close()
		return
	}
	if !errors.Is(err, ErrDatabaseInUse) || !strings.Contains(err.Error(), "--nats URL") || !strings.Contains(err.Error(), "(held from ") {
		t.Fatalf("a relay without NATS beside a tier: %v, want ErrDatabaseInUse naming --nats URL", err)
	}
	a.Close()
	b.Close()

	alone, err = s.LockRelay(ctx, false, nil)
	if err != nil {
		t.Fatalf("a relay alone on a free database: %v", err)
	}
	if _, err := other.LockRelay(ctx, true, nil); !errors.Is(err, ErrDatabaseInUse) || !strings.Contains(err.Error(), "restart that relay with --nats") {
		t.Fatalf("a tier relay beside a relay without NATS: %v", err)
	}
	if _, err := other.LockRelay(ctx, false, nil); !errors.Is(err, ErrDatabaseInUse) {
		t.Fatalf("a second relay alone: %v", err)
	}
	alone.Close()
	if l, err := other.LockRelay(ctx, true, nil); err != nil {
		t.Fatalf("a tier relay once the relay alone stopped: %v", err)
	} else {
		l.Close()
	}
}
