package consent

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// testLogger logs through t (so it must not be used after the test ends:
// every test closes its Consent first).
func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: zerolog.NewTestWriter(t), NoColor: true}).With().Timestamp().Logger()
}

// testRequest is a request as the agent's session manager would pass it.
func testRequest(id, technician, reason string, deadline time.Time) Request {
	return Request{
		SessionID:    id,
		AgentID:      "0190a8b2-7c1e-7d3a-9f00-000000000001",
		Hostname:     "desk-42",
		Technician:   technician,
		Reason:       reason,
		Capabilities: []string{"shell", "sftp"},
		Deadline:     deadline,
	}
}

// start opens a Consent closed at the end of the test.
func start(t *testing.T, p Policy, s Sessions, o options) *Consent {
	t.Helper()
	c, err := newConsent(p, s, testLogger(t), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// decideAsync runs Decide on a goroutine; the channel yields its decision.
func decideAsync(ctx context.Context, c *Consent, req Request) <-chan Decision {
	ch := make(chan Decision, 1)
	go func() { ch <- c.Decide(ctx, req) }()
	return ch
}

// await waits for a decision.
func await(t *testing.T, ch <-chan Decision, within time.Duration) Decision {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(within):
		t.Fatalf("no decision within %s", within)
		return Decision{}
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeSessions is the agent's session manager as the web page sees it.
type fakeSessions struct {
	mu    sync.Mutex
	live  []Live
	ended []string // "id by"
}

func (f *fakeSessions) Live() []Live {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.live)
}

func (f *fakeSessions) End(id, by string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, l := range f.live {
		if l.ID == id {
			f.live = slices.Delete(f.live, i, i+1)
			f.ended = append(f.ended, id+" "+by)
			return nil
		}
	}
	return errors.New("no such session")
}

func (f *fakeSessions) endedList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ended)
}
