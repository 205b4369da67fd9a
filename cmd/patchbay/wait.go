package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// waitDisplay shows the technician what the relay reports while the
// endpoint decides: "waiting for the user at pc-042 (45 s left)", counted
// down in place once a second on a terminal, or printed once otherwise;
// then the approval. (A refusal is the command's error, with its reason.)
//
// Ownership: status is called from the goroutine that opens the session;
// the countdown goroutine is started by the first status with a deadline
// on a terminal, and stop ends it and waits for it.
type waitDisplay struct {
	w     io.Writer
	tty   bool
	agent string
	now   func() time.Time

	mu       sync.Mutex
	deadline time.Time // by this machine's clock: when the status came plus the seconds left
	asking   string
	shown    bool // a countdown line is on screen (tty) or the waiting line was printed
	ticking  bool
	stopped  bool
	quit     chan struct{}
	done     chan struct{}
}

// waitDisplay returns the display for a session on agent, writing to the
// command's standard error.
func (a *app) waitDisplay(agent string) *waitDisplay {
	tty := false
	if f, ok := a.stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &waitDisplay{w: a.stderr, tty: tty, agent: agent, now: a.now, quit: make(chan struct{}), done: make(chan struct{})}
}

// status handles one status from the relay (client.SessionRequest.OnStatus).
func (d *waitDisplay) status(st apiv1.SessionStatus) {
	switch st.State {
	case "waiting":
		if st.Deadline == nil || st.SecondsLeft == nil {
			host := st.Hostname
			if host == "" {
				host = d.agent
			}
			fmt.Fprintf(d.w, "patchbay: session %s requested on %s; its consent policy decides...\n", clean(st.SessionID), clean(host))
			return
		}
		d.mu.Lock()
		d.deadline = d.now().Add(time.Duration(*st.SecondsLeft) * time.Second)
		d.asking = st.Asking
		if d.asking == "" {
			d.asking = "the user at " + st.Hostname
		}
		start := d.tty && !d.ticking && !d.stopped
		d.ticking = d.ticking || start
		if !d.tty {
			fmt.Fprintf(d.w, "patchbay: %s\n", d.line())
			d.shown = true
		}
		d.mu.Unlock()
		if start {
			go d.tick()
		}
	case "approved":
		d.stop()
		by := ""
		if st.Consent != nil && st.Consent.By != "" {
			by = " by " + clean(st.Consent.By)
		}
		fmt.Fprintf(d.w, "patchbay: approved%s (%s)\n", by, strings.Join(st.Capabilities, ", "))
	default:
		d.stop()
	}
}

// line is the waiting line (d.mu held).
func (d *waitDisplay) line() string {
	left := max(0, int(d.deadline.Sub(d.now()).Round(time.Second)/time.Second))
	return fmt.Sprintf("waiting for %s (%d s left)", clean(d.asking), left)
}

// tick redraws the countdown once a second until stop.
func (d *waitDisplay) tick() {
	defer close(d.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		d.mu.Lock()
		fmt.Fprintf(d.w, "\r\033[Kpatchbay: %s", d.line())
		d.shown = true
		d.mu.Unlock()
		select {
		case <-t.C:
		case <-d.quit:
			return
		}
	}
}

// stop ends the countdown (clearing its line) and waits for it. It may be
// called more than once.
func (d *waitDisplay) stop() {
	d.mu.Lock()
	ticking := d.ticking
	d.ticking, d.stopped = false, true
	d.mu.Unlock()
	if !ticking {
		return
	}
	close(d.quit)
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.shown {
		fmt.Fprint(d.w, "\r\033[K")
		d.shown = false
	}
}
