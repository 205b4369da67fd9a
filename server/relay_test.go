package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// startTestRelay runs a relay on dir in this process and returns it, an
// HTTPS client that trusts its CA, its base URL and a stop function (stop
// waits for Serve and closes the relay; Cleanup calls it too).
func startTestRelay(t *testing.T, dir string) (*Server, *http.Client, string, func()) {
	t.Helper()
	return startTestRelayAt(t, dir, "127.0.0.1:0")
}

// startTestRelayAt is startTestRelay listening on addr (a restarted relay
// keeps its address: agents know it).
func startTestRelayAt(t *testing.T, dir, addr string) (*Server, *http.Client, string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, Config{DataDir: dir, Hostnames: []string{"127.0.0.1"}, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-served
			s.Close()
		})
	}
	t.Cleanup(stop)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.ca.CertPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return s, client, "https://" + ln.Addr().String(), stop
}

// pollUntil checks cond every 20 ms until it holds, failing the test after
// within: for states that no event announces (a hub's view, /healthz, which
// the relay re-checks once a second).
func pollUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(within)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
	}
}
