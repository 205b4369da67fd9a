//go:build unix

package main

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// On a terminal the wait is counted down in place, once a second; the line
// is cleared before the decision is printed.
func TestWaitCountsDownInPlaceOnATerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal (/dev/ptmx, devpts must be mounted): %v", err)
	}
	defer ptmx.Close()
	var (
		mu  sync.Mutex
		out bytes.Buffer
	)
	got := make(chan struct{}, 64)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	waitOut := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			mu.Lock()
			s := out.String()
			mu.Unlock()
			if cond(s) {
				return
			}
			select {
			case <-got:
			case <-deadline:
				t.Fatalf("%s: terminal shows %q", what, s)
			}
		}
	}

	a := newApp(nil, io.Discard, tty)
	d := a.waitDisplay("pc-042")
	left := 45
	deadline := time.Now().Add(45 * time.Second)
	d.status(apiv1.SessionStatus{State: "waiting", SessionID: "s", Hostname: "pc-042"})
	d.status(apiv1.SessionStatus{State: "waiting", SessionID: "s", Hostname: "pc-042", Asking: "the user at pc-042\x1b[2J",
		Deadline: &deadline, SecondsLeft: &left})
	waitOut("two redraws", func(s string) bool {
		return strings.Count(s, "\r\x1b[Kpatchbay: waiting for the user at pc-042\\x1b[2J (4") >= 2
	})
	d.status(apiv1.SessionStatus{State: "approved", Capabilities: []string{"shell"}, Consent: &apiv1.Consent{By: "jane"}})
	waitOut("the decision", func(s string) bool { return strings.Contains(s, "\r\x1b[Kpatchbay: approved by jane (shell)") })
	d.stop() // again: nothing happens
	tty.Close()
	<-readDone
	mu.Lock()
	defer mu.Unlock()
	if s := out.String(); !strings.Contains(s, "its consent policy decides") || strings.Contains(s, "\x1b[2J") {
		t.Errorf("terminal output %q", s)
	}
}
