package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// A real agent link to a real relay: a software report is stored and
// acknowledged; malformed and oversized ones are refused with a clear error
// in the ack, the stored list untouched and the link up; the hello's
// hardware is stored; a refresh reaches the agent.
func TestSoftwareReportsStoredOrRefused(t *testing.T) {
	s, _, url, _ := startTestRelay(t, t.TempDir())
	ctx := context.Background()
	acks := make(chan wire.SoftwareAck, 8)
	refreshed := make(chan struct{}, 1)
	l, agentID := runLinkedAgent(t, s, url, "pc-1", func(env wire.Envelope) error {
		switch env.Type {
		case wire.MsgSoftwareAck:
			var a wire.SoftwareAck
			if err := wire.DecodeBody(env, &a); err != nil {
				return err
			}
			acks <- a
		case wire.MsgInventoryRefresh:
			refreshed <- struct{}{}
		}
		return nil
	})

	send := func(r wire.SoftwareReport) wire.SoftwareAck {
		t.Helper()
		if err := l.Session().Send(wire.MsgSoftware, "", r); err != nil {
			t.Fatal(err)
		}
		select {
		case a := <-acks:
			return a
		case <-time.After(10 * time.Second):
			t.Fatal("no software ack")
		}
		return wire.SoftwareAck{}
	}
	pkgs := []wire.Package{{Name: "openssl", Version: "3.0.11-1", Source: "dpkg"}, {Name: "zsh", Version: "5.9", Source: "dpkg"}}
	good, err := wire.EncodeSoftware(pkgs)
	if err != nil {
		t.Fatal(err)
	}
	if a := send(good); a.Error != "" || a.Hash != good.Hash {
		t.Fatalf("good report: ack %+v", a)
	}
	want := []store.Package{{Name: "openssl", Version: "3.0.11-1", Source: "dpkg"}, {Name: "zsh", Version: "5.9", Source: "dpkg"}}
	stored := func() []store.Package {
		p, err := s.store.ListSoftware(ctx, agentID)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got := stored(); !slices.Equal(got, want) {
		t.Fatalf("stored %v, want %v", got, want)
	}

	other, _ := wire.EncodeSoftware([]wire.Package{{Name: "evil", Version: "1"}})
	bad := map[string]struct {
		r    wire.SoftwareReport
		want string
	}{
		"hash":     {wire.SoftwareReport{Hash: good.Hash, Count: 1, Gzip: other.Gzip}, "does not match"},
		"count":    {wire.SoftwareReport{Hash: good.Hash, Count: wire.MaxPackages + 1, Gzip: good.Gzip}, "at most 20000"},
		"not gzip": {wire.SoftwareReport{Hash: good.Hash, Count: 2, Gzip: []byte("plain text")}, "not gzip"},
	}
	for name, c := range bad {
		a := send(c.r)
		if !strings.Contains(a.Error, "software report refused") || !strings.Contains(a.Error, c.want) {
			t.Errorf("%s: ack %+v, want an error with %q", name, a, c.want)
		}
		if got := stored(); !slices.Equal(got, want) {
			t.Fatalf("%s: stored list changed to %v", name, got)
		}
	}
	if !s.hub.Online(agentID) {
		t.Fatal("a refused report closed the link")
	}

	// The hello's hardware (this machine's) reached the store.
	pollUntil(t, 10*time.Second, "the hello's hardware stored", func() bool {
		inv, err := s.store.GetInventory(ctx, agentID)
		return err == nil && inv.Hardware.MemoryBytes > 0 && inv.Hardware.CPUCount > 0 && !inv.BootTime.IsZero()
	})

	if err := s.RefreshInventory(ctx, agentID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-refreshed:
	case <-time.After(10 * time.Second):
		t.Fatal("the refresh did not reach the agent")
	}
	if err := s.RefreshInventory(ctx, store.NewID()); err == nil {
		t.Error("refreshing an unknown agent succeeded")
	}
}
