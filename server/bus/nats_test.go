package bus

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// syncBuffer is a log sink safe for the bus's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNATS runs a real nats-server in the test's process on port (-1:
// random) and returns it; it is shut down when the test ends.
func startNATS(t *testing.T, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoSigs: true, NoLog: true})
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

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func dial(t *testing.T, url string, log zerolog.Logger) *NATS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := DialNATS(ctx, NATSConfig{URL: url, Name: t.Name(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return ""
	}
}

func TestNATS(t *testing.T) {
	ns := startNATS(t, -1)
	url := ns.ClientURL()
	port := ns.Addr().(*net.TCPAddr).Port
	var logs syncBuffer
	log := zerolog.New(&logs)
	pub, sub := dial(t, url, log), dial(t, url, log)

	got := make(chan string, 16)
	unsub, err := sub.Subscribe("patchbay.test", func(d []byte) {
		if string(d) == "boom" {
			panic("handler cannot decode " + string(d))
		}
		got <- string(d)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The subscription is registered at the server once a round trip has
	// gone through.
	if err := sub.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := pub.Publish(ctx, "patchbay.test", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, got); m != "one" {
		t.Fatalf("got %q, want one", m)
	}

	// A message its handler fails on is dropped with one log line; the
	// next one arrives.
	raw, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Publish("patchbay.test", []byte("boom"))
	raw.Publish("patchbay.test", []byte("two"))
	raw.Flush()
	if m := recv(t, got); m != "two" {
		t.Fatalf("got %q, want two", m)
	}
	if n := strings.Count(logs.String(), "message dropped"); n != 1 {
		t.Fatalf("%d log lines for the dropped message, want 1:\n%s", n, logs.String())
	}

	// An outage: Publish fails at once, the connections come back by
	// themselves with the server, and the subscription with them.
	ns.Shutdown()
	ns.WaitForShutdown()
	eventually(t, "publish to fail while NATS is down", func() bool {
		return pub.Publish(ctx, "patchbay.test", []byte("lost")) != nil
	})
	if err := pub.Publish(ctx, "patchbay.test", []byte("lost")); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("publish during the outage: %v, want a not connected error", err)
	}
	startNATS(t, port)
	eventually(t, "both connections to reconnect", func() bool {
		return pub.Conn().IsConnected() && sub.Conn().IsConnected()
	})
	if err := sub.Conn().Flush(); err != nil { // the subscription is re-sent on reconnect
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "patchbay.test", []byte("three")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, got); m != "three" {
		t.Fatalf("got %q after the restart, want three", m)
	}
	for _, want := range []string{"lost the NATS server", "reconnected to NATS"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log has no %q:\n%s", want, logs.String())
		}
	}
	unsub()
	if err := sub.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "patchbay.test", []byte("four")); err != nil {
		t.Fatal(err)
	}
	// A round trip through the subscriber's connection after the publish:
	// had it still been subscribed, the message would be queued by now.
	if err := sub.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		t.Fatalf("got %q after unsubscribe", m)
	default:
	}
}

func TestNATSRefusesPlainRemote(t *testing.T) {
	ctx := context.Background()
	for _, url := range []string{"nats://10.1.2.3:4222", "nats://127.0.0.1:4222,nats://nats.example.com:4222"} {
		_, err := DialNATS(ctx, NATSConfig{URL: url})
		if err == nil || !strings.Contains(err.Error(), "must use TLS") {
			t.Errorf("%s: %v, want a TLS error", url, err)
		}
	}
	if _, err := DialNATS(ctx, NATSConfig{URL: "http://127.0.0.1:4222"}); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("http URL: %v, want a scheme error", err)
	}
	// tls:// to a server without TLS: refused by the client, not sent in clear.
	ns := startNATS(t, -1)
	tlsURL := strings.Replace(ns.ClientURL(), "nats://", "tls://", 1)
	if _, err := DialNATS(ctx, NATSConfig{URL: tlsURL}); err == nil {
		t.Error("tls:// to a server without TLS connected")
	}
}

func TestEmbedded(t *testing.T) {
	dir := t.TempDir()
	var logs syncBuffer
	e, err := StartEmbedded(EmbeddedConfig{DataDir: dir, Listen: "127.0.0.1:0", Log: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fi, err := os.Stat(e.CredsFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", e.CredsFile, fi.Mode().Perm())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := DialNATS(ctx, NATSConfig{URL: e.URL}); err == nil {
		t.Fatal("connected to the embedded server without credentials")
	}
	b, err := DialNATS(ctx, NATSConfig{URL: e.URL, CredsFile: e.CredsFile})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make(chan string, 1)
	if _, err := b.Subscribe("patchbay.x", func(d []byte) { got <- string(d) }); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "patchbay.x", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, got); m != "hi" {
		t.Fatalf("got %q", m)
	}
	if _, err := os.Stat(filepath.Join(dir, EmbeddedStoreDir)); err != nil {
		t.Fatalf("no JetStream directory: %v", err)
	}
	if _, err := StartEmbedded(EmbeddedConfig{DataDir: dir, Listen: "0.0.0.0:0"}); err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Fatalf("embedded on 0.0.0.0: %v, want a loopback error", err)
	}
	// A restart keeps the password.
	before, _ := os.ReadFile(e.CredsFile)
	e.Close()
	e2, err := StartEmbedded(EmbeddedConfig{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	after, _ := os.ReadFile(e2.CredsFile)
	if !bytes.Equal(before, after) {
		t.Fatal("the credentials changed across a restart")
	}
}
