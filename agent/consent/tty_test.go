package consent

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTTY is a terminal: the agent reads what the test types and writes
// what the test reads.
type fakeTTY struct {
	in    *io.PipeReader // the agent reads here
	typeW *io.PipeWriter // the test types here
	mu    sync.Mutex
	out   bytes.Buffer
}

func newFakeTTY() *fakeTTY {
	r, w := io.Pipe()
	return &fakeTTY{in: r, typeW: w}
}

func (f *fakeTTY) Read(p []byte) (int, error) { return f.in.Read(p) }

func (f *fakeTTY) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.Write(p)
}

func (f *fakeTTY) Close() error { return f.in.Close() }

func (f *fakeTTY) screen() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.String()
}

func (f *fakeTTY) typeLine(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(f.typeW, s+"\n"); err != nil {
		t.Fatal(err)
	}
}

func TestTTY(t *testing.T) {
	tests := []struct {
		typed    string
		approved bool
		message  string
	}{
		{"y", true, "approved by the user on the terminal"},
		{" YES ", true, "approved by the user on the terminal"},
		{"n", false, "denied by the user"},
		{"", false, "denied by the user"},
		{"sure", false, "denied by the user"},
	}
	for _, tt := range tests {
		t.Run("typed "+tt.typed, func(t *testing.T) {
			tty := newFakeTTY()
			c := start(t, Policy{Backend: "tty", Timeout: 10 * time.Second}, nil, options{tty: tty})
			ch := decideAsync(context.Background(), c, testRequest("t1", "bob", "ticket 12", time.Time{}))
			waitFor(t, "the prompt", 5*time.Second, func() bool { return strings.Contains(tty.screen(), "Allow? [y/N]") })
			tty.typeLine(t, tt.typed)
			d := await(t, ch, 5*time.Second)
			if d.Approved != tt.approved || d.Message != tt.message || d.By != currentUser() || d.Backend != "tty" {
				t.Errorf("decision = %+v", d)
			}
			screen := tty.screen()
			for _, want := range []string{"Technician bob asks", "Reason: ticket 12", "open an interactive shell", "copy files to and from this machine", "within 10s"} {
				if !strings.Contains(screen, want) {
					t.Errorf("the prompt does not say %q:\n%s", want, screen)
				}
			}
		})
	}
}

func TestTTYTimeoutAndStaleInput(t *testing.T) {
	tty := newFakeTTY()
	c := start(t, Policy{Backend: "tty", Timeout: time.Second}, nil, options{tty: tty})
	// A line typed while nothing is asked answers nothing.
	tty.typeLine(t, "y")
	waitFor(t, "the line to be read", 5*time.Second, func() bool { return len(c.tty.lines) == 1 })
	d := c.Decide(context.Background(), testRequest("t2", "bob", "why", time.Time{}))
	if d.Approved || d.By != ByTimeout || d.Message != "no answer within 1s" {
		t.Errorf("decision = %+v", d)
	}
	if !strings.Contains(tty.screen(), "No answer in time: denied.") {
		t.Errorf("screen:\n%s", tty.screen())
	}
}

func TestTTYOneQuestionAtATime(t *testing.T) {
	tty := newFakeTTY()
	c := start(t, Policy{Backend: "tty", Timeout: 10 * time.Second}, nil, options{tty: tty})
	a := decideAsync(context.Background(), c, testRequest("q-a", "alice", "one", time.Time{}))
	waitFor(t, "the first prompt", 5*time.Second, func() bool { return strings.Count(tty.screen(), "Allow? [y/N]") == 1 })
	b := decideAsync(context.Background(), c, testRequest("q-b", "bob", "two", time.Time{}))
	time.Sleep(100 * time.Millisecond)
	if n := strings.Count(tty.screen(), "Allow? [y/N]"); n != 1 {
		t.Fatalf("%d prompts at once", n)
	}
	tty.typeLine(t, "n")
	waitFor(t, "the second prompt", 5*time.Second, func() bool { return strings.Count(tty.screen(), "Allow? [y/N]") == 2 })
	tty.typeLine(t, "y")
	da, db := await(t, a, 5*time.Second), await(t, b, 5*time.Second)
	if da.Approved || !db.Approved {
		t.Errorf("alice %+v, bob %+v", da, db)
	}
}

func TestTTYNotify(t *testing.T) {
	tty := newFakeTTY()
	c := start(t, Policy{Mode: ModeNotify, Backend: "tty"}, nil, options{tty: tty})
	c.Started(Live{ID: "n1", Technician: "erin", Capabilities: []string{"shell", "forward"}})
	waitFor(t, "the started line", 5*time.Second, func() bool {
		return strings.Contains(tty.screen(), "[patchbay] Technician erin started a remote session on this computer and can open an interactive shell, connect to services")
	})
	c.Ended("n1", "idle for 15m")
	waitFor(t, "the ended line", 5*time.Second, func() bool {
		return strings.Contains(tty.screen(), "[patchbay] The remote session of erin on this computer ended: idle for 15m.")
	})
}
