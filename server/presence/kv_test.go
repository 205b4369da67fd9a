package presence

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// startNATS runs a real nats-server with JetStream in the test's process.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready within 10s")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// hub stands for a relay's hub: the agents it holds.
type hub struct {
	mu    sync.Mutex
	links map[string]bool
}

func (h *hub) set(id string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.links == nil {
		h.links = map[string]bool{}
	}
	h.links[id] = on
}

func (h *hub) here(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.links[id]
}

type relay struct {
	hub hub
	p   *KV
	nc  *nats.Conn
}

func newRelay(t *testing.T, url, node string, ttl time.Duration) *relay {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r := &relay{nc: nc}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.p, err = NewKV(ctx, Config{Conn: nc, Node: node, TTL: ttl, Here: r.hub.here, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.p.Close)
	return r
}

func (r *relay) connect(id string)    { r.hub.set(id, true); r.p.Connected(id) }
func (r *relay) disconnect(id string) { r.hub.set(id, false); r.p.Disconnected(id) }

// eventually polls cond until it holds or timeout passes, and returns how
// long that took.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
	return time.Since(start)
}

// holds checks cond at every tick for the whole of d and fails the test
// the first time it does not hold.
func holds(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	end := time.After(d)
	for {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		select {
		case <-tick.C:
		case <-end:
			return
		}
	}
}

func TestKV(t *testing.T) {
	ns := startNATS(t)
	const ttl = 2 * time.Second
	a := newRelay(t, ns.ClientURL(), "relay-a", ttl)
	b := newRelay(t, ns.ClientURL(), "relay-b", ttl)
	const x, y = "8f0c5a8e-4a38-4c1b-9a55-2f3b9c1d7e01", "8f0c5a8e-4a38-4c1b-9a55-2f3b9c1d7e02"

	a.connect(x)
	if !a.p.Online(x) {
		t.Fatal("the holding relay does not see its own agent online")
	}
	eventually(t, 5*time.Second, "relay b to see x online on a", func() bool {
		node, ok := b.p.Where(x)
		return ok && node == "relay-a"
	})
	// Refreshes keep it online past the TTL: b sees it at a all along.
	holds(t, 2*ttl, "b seeing x on relay-a for 2 TTLs (refreshed)", func() bool {
		node, ok := b.p.Where(x)
		return ok && node == "relay-a"
	})

	// The agent moves to b; a's late disconnect does not delete b's key.
	b.connect(x)
	eventually(t, 5*time.Second, "relay a to see b's key for x", func() bool { return a.p.seenAt(x) == "relay-b" })
	a.disconnect(x)
	// a writes its changes in order, deletes before puts: once b sees z,
	// a has dealt with x.
	const z = "8f0c5a8e-4a38-4c1b-9a55-2f3b9c1d7e03"
	a.connect(z)
	eventually(t, 5*time.Second, "b to see z on a", func() bool { return b.p.Online(z) })
	if node, ok := a.p.Where(x); !ok || node != "relay-b" {
		t.Fatalf("after a's disconnect, a sees x at %q, %v; want relay-b", node, ok)
	}

	// A clean disconnect takes it offline everywhere at once.
	b.disconnect(x)
	eventually(t, ttl/2, "x offline on a after b's disconnect", func() bool { return !a.p.Online(x) })

	// A lost relay (its process gone without a word): its keys expire
	// within the TTL.
	c := newRelay(t, ns.ClientURL(), "relay-c", ttl)
	c.connect(y)
	eventually(t, 5*time.Second, "a to see y on c", func() bool { return a.p.Online(y) })
	c.nc.Close() // no clean disconnect reaches the bucket
	took := eventually(t, 3*ttl, "y to expire on a", func() bool { return !a.p.Online(y) })
	t.Logf("a lost relay's agent went offline after %v (TTL %v)", took, ttl)

	// An ID that cannot be a key is refused, not published.
	a.p.Connected("bad key with spaces")
	if a.p.Online("bad key with spaces") {
		t.Fatal("an invalid key is online")
	}
}

// seenAt is the node the bucket names for id, as p watched it.
func (p *KV) seenAt(id string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[id].node
}

func TestLocal(t *testing.T) {
	var h hub
	l := Local{Here: h.here}
	h.set("x", true)
	if !l.Online("x") || l.Online("y") {
		t.Fatal("Local does not follow the hub")
	}
}

// TestKVOutage: NATS restarts (same store); an agent that connected during
// the outage shows up once the relays have reconnected, and one held
// before is still online.
func TestKVOutage(t *testing.T) {
	store := t.TempDir()
	start := func(port int) *server.Server {
		ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoSigs: true, NoLog: true,
			JetStream: true, StoreDir: store})
		if err != nil {
			t.Fatalf("nats-server: %v", err)
		}
		ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats-server not ready within 10s")
		}
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		return ns
	}
	ns := start(-1)
	port := ns.Addr().(*net.TCPAddr).Port
	const ttl = 3 * time.Second
	a := newRelay(t, ns.ClientURL(), "relay-a", ttl)
	b := newRelay(t, ns.ClientURL(), "relay-b", ttl)
	const x, y = "8f0c5a8e-4a38-4c1b-9a55-2f3b9c1d7e11", "8f0c5a8e-4a38-4c1b-9a55-2f3b9c1d7e12"
	a.connect(x)
	eventually(t, 5*time.Second, "b to see x", func() bool { return b.p.Online(x) })

	ns.Shutdown()
	ns.WaitForShutdown()
	eventually(t, 5*time.Second, "the relays to notice", func() bool { return !a.nc.IsConnected() && !b.nc.IsConnected() })
	a.connect(y) // written when NATS is back
	start(port)
	eventually(t, 10*time.Second, "b to see x and y on a after the restart", func() bool {
		return b.p.Online(x) && b.p.Online(y)
	})
}
