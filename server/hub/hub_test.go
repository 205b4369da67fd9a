package hub

import (
	"context"
	"errors"
	"testing"

	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/server/bus"
)

type link struct {
	id     string
	closed string
}

func (l *link) AgentID() string     { return l.id }
func (l *link) Close(reason string) { l.closed = reason }

func (l *link) Send(string, any) error { return nil }

func (l *link) Open(context.Context, string) (*mux.Stream, error) { return nil, ErrOffline }

func TestRegisterReplaceRevoke(t *testing.T) {
	h, err := New(&bus.Local{}, []string{"gone"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	a1, a2 := &link{id: "a"}, &link{id: "a"}
	if err := h.Register(a1); err != nil {
		t.Fatal(err)
	}
	if err := h.Register(a2); err != nil {
		t.Fatal(err)
	}
	if a1.closed == "" || a2.closed != "" {
		t.Fatalf("older link not replaced: %q %q", a1.closed, a2.closed)
	}
	if h.Unregister(a1) {
		t.Fatal("stale link unregistered the current one")
	}
	if !h.Online("a") || h.Count() != 1 {
		t.Fatal("a should be online")
	}
	if err := h.Register(&link{id: "gone"}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked agent registered: %v", err)
	}
	if err := h.Revoke(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if a2.closed == "" || h.Online("a") || !h.IsRevoked("a") {
		t.Fatalf("revoke did not close the link: %q", a2.closed)
	}
	if err := h.Register(&link{id: "a"}); !errors.Is(err, ErrRevoked) {
		t.Fatal("revoked agent came back")
	}
}
