package presence

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Two relays advertise their URLs and read each other's; a closed relay's
// entry is gone, and an unknown node is an error that says so.
func TestRelaysAdvertiseURLs(t *testing.T) {
	ns := startNATS(t)
	open := func(node, url string) *Relays {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := NewRelays(ctx, RelaysConfig{Conn: nc, Node: node, URL: url, TTL: 3 * time.Second, Log: zerolog.New(zerolog.NewTestWriter(t))})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := open("relay-a", "https://127.0.0.1:1001")
	b := open("relay-b", "https://127.0.0.1:1002")
	defer b.Close()
	ctx := context.Background()
	if u, err := b.URL(ctx, "relay-a"); err != nil || u != "https://127.0.0.1:1001" {
		t.Fatalf("B reads A's URL as %q, %v", u, err)
	}
	if u, err := a.URL(ctx, "relay-b"); err != nil || u != "https://127.0.0.1:1002" {
		t.Fatalf("A reads B's URL as %q, %v", u, err)
	}
	a.Close()
	if _, err := b.URL(ctx, "relay-a"); err == nil || !strings.Contains(err.Error(), "advertised no URL") {
		t.Fatalf("B reads a closed relay's URL: %v", err)
	}
	if _, err := b.URL(ctx, "no such/node"); err == nil {
		t.Fatal("an invalid node ID was looked up")
	}
	if _, err := NewRelays(ctx, RelaysConfig{Node: "x", URL: "https://x", TTL: time.Second}); err == nil {
		t.Fatal("NewRelays without a connection")
	}
}
