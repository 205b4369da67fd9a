package sshd

import (
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/asciicast"
	"github.com/patchbay/patchbay/internal/wire"
)

// recordSink collects a recording and notes whether it was closed.
type recordSink struct {
	syncBuffer
	mu     sync.Mutex
	calls  int
	header asciicast.Header
	closed bool
}

func (r *recordSink) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

func (r *recordSink) record(h asciicast.Header) (io.WriteCloser, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.header = h
	return r, nil
}

// events parses the recording.
func (r *recordSink) events(t *testing.T) (asciicast.Header, []asciicast.Event) {
	t.Helper()
	var evs []asciicast.Event
	h, err := asciicast.Parse(strings.NewReader(r.String()), func(e asciicast.Event) error {
		evs = append(evs, e)
		return nil
	})
	if err != nil {
		t.Fatalf("recording does not parse: %v\n%s", err, r.String())
	}
	return h, evs
}

func joinEvents(evs []asciicast.Event, typ string) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Type == typ {
			b.WriteString(e.Data)
		}
	}
	return b.String()
}

// waitOutput waits until buf contains want.
func waitOutput(t *testing.T, buf *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output:\n%q", want, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShellRecording(t *testing.T) {
	f := newFixture(t)
	rec := &recordSink{}
	cfg := f.config(wire.CapShell)
	cfg.Record = rec.record
	sv := f.serve(cfg)
	c := f.client(sv)
	s := f.session(c)
	stdin, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	s.Stdout, s.Stderr = out, out
	if err := s.RequestPty("xterm-256color", 24, 80, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	type step struct{ typed, want string }
	for _, st := range []step{
		{"echo typed-$((6*7))\r", "typed-42"},
		{"tty; echo \"term=$TERM\"\r", "term=xterm-256color"},
		{"sleep 301 & echo pid=$!\r", "pid="}, // the echo of the command line; the pid is awaited below
	} {
		if _, err := stdin.Write([]byte(st.typed)); err != nil {
			t.Fatal(err)
		}
		waitOutput(t, out, st.want)
	}
	if err := s.WindowChange(30, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write([]byte("stty size\r")); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out, "30 100")
	// (the terminal echoes "echo pid=$!" first: wait for digits)
	pidRE := regexp.MustCompile(`pid=(\d+)`)
	for deadline := time.Now().Add(10 * time.Second); pidRE.FindStringSubmatch(out.String()) == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %q", out.String())
		}
	}
	pid, _ := strconv.Atoi(pidRE.FindStringSubmatch(out.String())[1])
	if _, err := stdin.Write([]byte("exit 4\r")); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, s.Wait()); code != 4 {
		t.Errorf("shell exit status %d, want 4", code)
	}
	if !strings.Contains(out.String(), "/dev/pts/") {
		t.Errorf("no terminal: %q", out.String())
	}
	_ = c.Close()
	if err := sv.wait(t, 5*time.Second); err != nil {
		t.Errorf("Serve: %v", err)
	}
	waitGone(t, pid) // the background job died with the session

	rec.mu.Lock()
	calls, closed := rec.calls, rec.closed
	rec.mu.Unlock()
	if calls != 1 || !closed {
		t.Errorf("Record called %d times, closed %v; want 1, true", calls, closed)
	}
	h, evs := rec.events(t)
	if h.Width != 80 || h.Height != 24 || h.Env["TERM"] != "xterm-256color" || h.Env["SHELL"] != "/bin/sh" || h.Timestamp == 0 {
		t.Errorf("header %+v", h)
	}
	if in := joinEvents(evs, "i"); !strings.Contains(in, "echo typed-$((6*7))\r") || !strings.Contains(in, "exit 4\r") {
		t.Errorf("typed input not recorded: %q", in)
	}
	if o := joinEvents(evs, "o"); !strings.Contains(o, "typed-42") || !strings.Contains(o, "30 100") {
		t.Errorf("output not recorded: %q", o)
	}
	if r := joinEvents(evs, "r"); r != "100x30" {
		t.Errorf("resize events %q, want 100x30", r)
	}
	if m := joinEvents(evs, "m"); m != "channel 1: shell" {
		t.Errorf("markers %q", m)
	}
}

func TestRecordingFailureIsFatal(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(wire.CapShell, wire.CapExec)
	cfg.Record = func(asciicast.Header) (io.WriteCloser, error) { return nil, errors.New("relay stream refused") }
	sv := f.serve(cfg)
	s, errOut := f.sessionStderr(f.client(sv))
	if err := s.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, s.Wait()); code != 1 {
		t.Errorf("terminal session without its recording: exit status %d, want 1", code)
	}
	if got := errOut(); !strings.Contains(got, "patchbay: the session cannot start: start recording: relay stream refused") {
		t.Errorf("stderr %q", got)
	}

	// A recording that breaks mid-session ends the session.
	cfg.Record = func(asciicast.Header) (io.WriteCloser, error) { return &failAfter{n: 2}, nil }
	sv = f.serve(cfg)
	s = f.session(f.client(sv))
	stderr := &syncBuffer{}
	s.Stderr = stderr
	if err := s.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, s.Run("while :; do echo tick; sleep 0.1; done")); code != 255 {
		t.Errorf("exit status %d, want 255", code)
	}
	if err := sv.wait(t, 5*time.Second); err == nil || !strings.Contains(err.Error(), "recording failed") {
		t.Errorf("Serve: %v", err)
	}
	if !strings.Contains(stderr.String(), "patchbay: session ended: recording failed") {
		t.Errorf("stderr %q", stderr.String())
	}
}

// failAfter accepts n writes, then fails.
type failAfter struct {
	mu sync.Mutex
	n  int
}

func (w *failAfter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n--; w.n < 0 {
		return 0, errors.New("stream reset")
	}
	return len(p), nil
}

func (w *failAfter) Close() error { return nil }
