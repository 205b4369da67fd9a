package access

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchbay/patchbay/server/bus"
	"github.com/patchbay/patchbay/server/store"
)

// TestResync: a node that missed an access end on the bus (two buses here:
// the message never reaches it) learns it from the store on Resync, once.
func TestResync(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	clock := func() time.Time { return now }
	if err := st.RecordSSHCert(ctx, store.SSHCert{Serial: 7, KeyID: "alice", TokenID: "tok-a", IssuedAt: now, ValidBefore: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	one, cutOff := node(t, st, &bus.Local{}, clock), node(t, st, &bus.Local{}, clock)
	if _, err := one.EndAccess(ctx, []string{"tok-a"}, "access revoked: API token alice was revoked by admin"); err != nil {
		t.Fatal(err)
	}
	if got := cutOff.Revoked(); len(got) != 0 {
		t.Fatalf("the cut-off node knows %+v before Resync", got)
	}
	n, err := cutOff.Resync(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Resync: %d, %v; want 1", n, err)
	}
	if got := greeted(t, cutOff); len(got) != 1 || got[0].Serial != 7 {
		t.Fatalf("after Resync the cut-off node greets agents with %+v", got)
	}
	if n, err := cutOff.Resync(ctx); err != nil || n != 0 {
		t.Fatalf("second Resync: %d, %v; want 0", n, err)
	}
}
