package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// sendLink counts what it was sent; fail makes Send fail.
type sendLink struct {
	link
	mu   sync.Mutex
	got  []string
	fail bool
}

func (l *sendLink) Send(typ string, _ any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		return ErrOffline
	}
	l.got = append(l.got, typ)
	return nil
}

func TestBroadcast(t *testing.T) {
	h, err := New(&bus.Local{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if n := h.Broadcast("x", nil, nil); n != 0 {
		t.Fatalf("broadcast to nobody reached %d", n)
	}
	var links []*sendLink
	for i := range 50 {
		l := &sendLink{link: link{id: fmt.Sprint("a", i)}, fail: i == 7}
		links = append(links, l)
		if err := h.Register(l); err != nil {
			t.Fatal(err)
		}
	}
	n := h.Broadcast("ssh_revoked", nil, func(id string) bool { return id == "a3" })
	if n != 48 {
		t.Errorf("reached %d agents, want 48 (50, one skipped, one failing)", n)
	}
	for i, l := range links {
		want := 1
		if i == 3 || i == 7 {
			want = 0
		}
		if len(l.got) != want {
			t.Errorf("agent %s got %v", l.id, l.got)
		}
	}
}
