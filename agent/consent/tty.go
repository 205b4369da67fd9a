package consent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// ttyBackend asks y/N on the agent's controlling terminal, one request at a
// time (others wait for their turn within their own deadline).
type ttyBackend struct {
	rw    io.ReadWriteCloser
	user  string       // the person at the terminal: the user the agent runs as
	lines chan ttyLine // lines read, newest last (dropped when full)
	turn  chan struct{}
	wmu   sync.Mutex
}

// newTTYBackend opens the controlling terminal, or uses rw (tests).
func newTTYBackend(rw io.ReadWriteCloser, user string) (*ttyBackend, error) {
	if rw == nil {
		name := "/dev/tty"
		if runtime.GOOS == "windows" {
			return nil, errors.New("tty consent backend: not supported on Windows; use --consent-backend desktop or web")
		}
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("tty consent backend: %w (the agent has no terminal: run it in the foreground or use --consent-backend web)", err)
		}
		// Close must be able to interrupt the reader, which needs a pollable file.
		if err := f.SetReadDeadline(time.Time{}); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("tty consent backend: %s cannot be read with a deadline on this system (%v); use --consent-backend web", name, err)
		}
		rw = f
	}
	return &ttyBackend{rw: rw, user: user, lines: make(chan ttyLine, 8), turn: make(chan struct{}, 1)}, nil
}

// ttyLine is a line typed on the terminal and when it was read.
type ttyLine struct {
	text string
	at   time.Time
}

// readLines reads the terminal until it is closed. A question only takes
// lines read after it was shown: anything typed before is dropped.
func (t *ttyBackend) readLines() {
	sc := bufio.NewScanner(t.rw)
	sc.Buffer(make([]byte, 0, 256), 4096)
	for sc.Scan() {
		select {
		case t.lines <- ttyLine{text: sc.Text(), at: time.Now()}:
		default:
		}
	}
}

func (t *ttyBackend) close() error {
	return t.rw.Close()
}

func (t *ttyBackend) write(s string) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	_, _ = io.WriteString(t.rw, s)
}

func (t *ttyBackend) ask(ctx context.Context, req Request) answer {
	select {
	case t.turn <- struct{}{}:
	case <-ctx.Done():
		return answer{}
	}
	defer func() { <-t.turn }()
	for drained := false; !drained; { // typed before the question: not an answer
		select {
		case <-t.lines:
		default:
			drained = true
		}
	}
	shown := time.Now()
	question := "\nAllow? [y/N] "
	switch {
	case req.kind() == KindReboot:
		question = "\nRestart [n]ow, in 1 [h]our or [t]onight? [t] "
	case req.desktop == DesktopControl:
		question = "\nAllow [f]ull control, [v]iew only, or [N]o? [N] "
	case req.desktop == DesktopViewOnly:
		question = "\nAllow view only? [y/N] "
	}
	t.write("\n*** " + promptTitleFor(req) + " ***\n" + promptText(req, shown) + question)
	var line ttyLine
	for line.at.Before(shown) {
		select {
		case line = <-t.lines:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.write("\nNo answer in time: denied.\n")
			} else {
				t.write("\nRequest withdrawn.\n")
			}
			return answer{}
		}
	}
	if req.kind() == KindReboot {
		choice := map[string]string{"n": ChoiceNow, "now": ChoiceNow, "h": ChoiceHour, "1h": ChoiceHour,
			"t": ChoiceTonight, "tonight": ChoiceTonight, "": ChoiceTonight}[strings.ToLower(strings.TrimSpace(line.text))]
		if choice == "" {
			t.write("Not a choice: tonight.\n")
			return answer{by: t.user, message: "no restart choice on the terminal"}
		}
		t.write("Restart " + choice + ".\n")
		return answer{approved: true, choice: choice, by: t.user, message: "restart " + choice + " chosen on the terminal"}
	}
	typed := strings.ToLower(strings.TrimSpace(line.text))
	if req.desktop == DesktopControl {
		i := 2 // anything else denies
		switch typed {
		case "f", "full", "full control":
			i = 0
		case "v", "view", "view only":
			i = 1
		}
		t.write([]string{"Approved: full control.\n", "Approved: view only.\n", "Denied.\n"}[i])
		return desktopAnswer(i, t.user, "on the terminal")
	}
	switch typed {
	case "y", "yes":
		t.write("Approved.\n")
		a := answer{approved: true, by: t.user, message: "approved by the user on the terminal"}
		if req.desktop == DesktopViewOnly {
			a.choice, a.message = ChoiceViewOnly, "approved view only by the user on the terminal"
		}
		return a
	}
	t.write("Denied.\n")
	return answer{by: t.user, message: "denied by the user"}
}

func (t *ttyBackend) notify(_ context.Context, ev event) error {
	t.write("\n[patchbay] " + eventText(ev) + "\n")
	return nil
}
