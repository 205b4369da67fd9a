package link

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// TestReporterSendsChangedSoftwareOnly drives a Reporter through link-up,
// ack, an unchanged round, a changed list and a refresh, recording what it
// sends.
func TestReporterSendsChangedSoftwareOnly(t *testing.T) {
	type sent struct {
		typ string
		rep wire.SoftwareReport
	}
	out := make(chan sent, 10)
	var mu sync.Mutex
	pkgs := []wire.Package{{Name: "openssl", Version: "3.0.11", Source: "dpkg"}, {Name: "bad\x01name", Version: "1"}}
	state := filepath.Join(t.TempDir(), "hash")
	r := NewReporter(ReporterConfig{
		Send: func(typ string, body any) error {
			s := sent{typ: typ}
			if rep, ok := body.(wire.SoftwareReport); ok {
				s.rep = rep
			}
			out <- s
			return nil
		},
		Inventory: func(context.Context) wire.Inventory { return wire.Inventory{Hostname: "h", OS: "linux", Arch: "amd64"} },
		Software: func(context.Context) ([]wire.Package, error) {
			mu.Lock()
			defer mu.Unlock()
			return append([]wire.Package(nil), pkgs...), nil
		},
		StateFile: state,
		Every:     time.Hour,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	next := func() sent {
		t.Helper()
		select {
		case s := <-out:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("nothing sent")
		}
		return sent{}
	}
	ack := func(hash string) {
		env, _ := wire.NewEnvelope(wire.MsgSoftwareAck, "", wire.SoftwareAck{Hash: hash})
		if ok, err := r.Control(env); !ok || err != nil {
			t.Fatalf("ack: %v %v", ok, err)
		}
	}

	r.Connected()
	s := next()
	p, err := wire.DecodeSoftware(s.rep)
	if s.typ != wire.MsgSoftware || err != nil || len(p) == 0 || p[0].Name != "bad?name" && p[0].Name != "bad name" {
		t.Fatalf("first report %s %v %v", s.typ, p, err)
	}
	ack(s.rep.Hash)
	if b, _ := os.ReadFile(state); strings.TrimSpace(string(b)) != s.rep.Hash {
		t.Fatalf("state file %q", b)
	}
	// Unchanged: a reconnect sends nothing. A refresh, though, sends the
	// inventory and the list. The refresh's messages prove the reconnect
	// round sent nothing (the rounds run in order).
	r.Connected()
	env, _ := wire.NewEnvelope(wire.MsgInventoryRefresh, "", wire.InventoryRefresh{})
	if ok, _ := r.Control(env); !ok {
		t.Fatal("refresh not handled")
	}
	if s := next(); s.typ != wire.MsgInventory {
		t.Fatalf("after refresh: %s, want inventory first (the reconnect round must send nothing)", s.typ)
	}
	if s := next(); s.typ != wire.MsgSoftware {
		t.Fatalf("after refresh: %s, want software", s.typ)
	}
	// A new Reporter on the same state file remembers the ack.
	if r2 := NewReporter(ReporterConfig{StateFile: state}); r2.Acked() != s.rep.Hash {
		t.Errorf("restarted reporter acked %q", r2.Acked())
	}
	// Changed list: sent on the next link-up.
	mu.Lock()
	pkgs = append(pkgs, wire.Package{Name: "curl", Version: "7.88"})
	mu.Unlock()
	r.Connected()
	if s2 := next(); s2.typ != wire.MsgSoftware || s2.rep.Hash == s.rep.Hash || s2.rep.Count != 3 {
		t.Fatalf("changed list: %s count %d", s2.typ, s2.rep.Count)
	}
}
