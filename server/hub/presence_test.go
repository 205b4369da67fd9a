package hub

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/server/bus"
)

// TestBusAndPresence: a revocation message that is not an agent ID is
// dropped with one log line; the presence hooks follow links.
func TestBusAndPresence(t *testing.T) {
	var b bus.Local
	var logs bytes.Buffer
	var events []string
	h, err := New(&b, nil, WithLog(zerolog.New(&logs)),
		WithPresence(func(id string) { events = append(events, "up "+id) }, func(id string) { events = append(events, "down "+id) }))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	const a1, a2 = "0b7e2c36-6c55-4d43-9f39-8d2f3c7f0a01", "0b7e2c36-6c55-4d43-9f39-8d2f3c7f0a02"
	l1, l2 := &link{id: a1}, &link{id: a2}
	if err := h.Register(l1); err != nil {
		t.Fatal(err)
	}
	if err := h.Register(l2); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b.Publish(ctx, subjectRevoked, []byte("not-an-id\x00"))
	if n := strings.Count(logs.String(), "not an agent ID"); n != 1 || !h.Online(a1) || !h.Online(a2) {
		t.Fatalf("malformed revocation: %d log lines, online %v %v; want 1, true, true\n%s", n, h.Online(a1), h.Online(a2), logs.String())
	}
	if err := h.Revoke(ctx, a1); err != nil {
		t.Fatal(err)
	}
	if h.Online(a1) || l1.closed == "" {
		t.Fatal("a revoked agent is still online")
	}
	h.Unregister(l1) // its link ends after the revocation: no second down
	h.Unregister(l2)
	want := "up " + a1 + ",up " + a2 + ",down " + a1 + ",down " + a2
	if got := strings.Join(events, ","); got != want {
		t.Fatalf("presence events %s, want %s", got, want)
	}
}
