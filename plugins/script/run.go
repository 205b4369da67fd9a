package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/patchbay/patchbay/plugins/scriptmeta"
)

const (
	// drainGrace is how long output may keep coming after the script's
	// group was ended (from a process that left the group) before the pipe
	// is closed on it.
	drainGrace = 2 * time.Second
	// tailLines and maxTrackedLine bound the output kept for messages.
	tailLines      = 10
	maxTrackedLine = 512
	maxSummary     = 200
)

// timeoutError is the cause of a run's context ending at its time limit.
type timeoutError struct{ limit time.Duration }

func (e timeoutError) Error() string { return fmt.Sprintf("timed out after %v", e.limit) }

// result is how a script run ended.
type result struct {
	exitCode int    // -1 when a signal ended it
	exitMsg  string // the wait status, like "signal: killed"
	lineTracker
}

// summary returns the script's last line of text, or def.
func (r *result) summary(def string) string {
	if r.lastText == "" {
		return def
	}
	if utf8.RuneCountInString(r.lastText) > maxSummary {
		return string([]rune(r.lastText)[:maxSummary]) + "…"
	}
	return r.lastText
}

// exitText describes the exit status for an error message.
func (r *result) exitText() string {
	if r.exitCode < 0 {
		return "ended by " + r.exitMsg
	}
	return fmt.Sprintf("exit code %d", r.exitCode)
}

// tailText is the last output lines, for an error message.
func (r *result) tailText() string {
	if len(r.tail) == 0 {
		return ""
	}
	return "; last output:\n" + strings.Join(r.tail, "\n")
}

// run executes the script once in mode ("check" or "fix"), streaming its
// output to sink. It returns an error only when the script could not be run
// or was killed (time limit, cancellation, too much output); a non-zero exit
// code is a result.
func (j *job) run(ctx context.Context, mode string, sink io.Writer) (*result, error) {
	root, err := os.MkdirTemp("", "patchbay-script-")
	if err != nil {
		return nil, fmt.Errorf("script %s: working directory: %w", j.name, err)
	}
	defer removeAll(root)
	work, tmp := filepath.Join(root, "work"), filepath.Join(root, "tmp")
	for _, d := range []string{work, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("script %s: working directory: %w", j.name, err)
		}
	}
	// The script runs from this private copy of the bytes that were hashed,
	// never from the attachment path, which could change after the check.
	file := filepath.Join(root, j.name+extension(j.shell))
	if err := os.WriteFile(file, j.data, 0o600); err != nil {
		return nil, fmt.Errorf("script %s: copy: %w", j.name, err)
	}
	argv, err := command(j.shell, file)
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", j.name, err)
	}
	env := append(baseEnv(tmp), "PATCHBAY_MODE="+mode)
	env = append(env, paramEnv(j.params)...)

	limit := j.timeout
	if dl, ok := ctx.Deadline(); ok {
		// End the script a little before the caller's deadline, so that
		// this plugin, not the agent killing this plugin, ends the group.
		left := time.Until(dl)
		if budget := left - min(2*time.Second, left/10); budget < limit {
			limit = max(budget, time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, limit, timeoutError{limit.Round(time.Millisecond)})
	defer cancel()

	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("script %s: pipe: %w", j.name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, work
	cmd.Stdin = nil // the null device
	cmd.Stdout, cmd.Stderr = pw, pw
	g := newGroup(cmd)
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("script %s: start %s: %w", j.name, argv[0], err)
	}
	if err := g.started(cmd); err != nil {
		g.kill()
		g.close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		pr.Close()
		return nil, fmt.Errorf("script %s: %w", j.name, err)
	}
	defer g.close()

	c := &capture{max: j.maxOutput, sink: sink, over: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(c, pr)
		close(copied)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var werr error
	killed := false
	select {
	case werr = <-waited:
	case <-ctx.Done():
		killed = true
		g.kill()
		werr = <-waited
	case <-c.over:
		g.kill()
		werr = <-waited
	}
	g.kill() // whatever the script left running in its group
	select {
	case <-copied:
	case <-time.After(drainGrace):
		pr.Close() // a process that left the group still holds the pipe
		select {
		case <-copied:
		case <-time.After(time.Second):
		}
	}
	pr.Close()
	lines, exceeded := c.detach()

	switch {
	case exceeded:
		return nil, fmt.Errorf("script %s: output exceeded %d bytes: killed it and every process it started", j.name, j.maxOutput)
	case killed:
		var te timeoutError
		switch cause := context.Cause(ctx); {
		case errors.As(cause, &te):
			return nil, fmt.Errorf("script %s: %v: killed it and every process it started", j.name, te)
		case errors.Is(cause, context.Canceled):
			return nil, fmt.Errorf("script %s: cancelled: killed it and every process it started", j.name)
		default:
			return nil, fmt.Errorf("script %s: %v: killed it and every process it started", j.name, cause)
		}
	}
	r := &result{lineTracker: lines}
	var ee *exec.ExitError
	switch {
	case werr == nil:
	case errors.As(werr, &ee):
		r.exitCode, r.exitMsg = ee.ExitCode(), ee.String()
	default:
		return nil, fmt.Errorf("script %s: wait: %w", j.name, werr)
	}
	return r, nil
}

// extension is the file name extension a shell expects (powershell.exe
// -File refuses anything but .ps1).
func extension(shell string) string {
	if shell == scriptmeta.ShellPowerShell {
		return ".ps1"
	}
	return ".sh"
}

// removeAll deletes the run's directory, making read-only directories the
// script left behind writable first.
func removeAll(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}

// capture counts, caps and forwards a script's output, and remembers its
// last lines.
type capture struct {
	mu       sync.Mutex
	max      int64
	n        int64
	sink     io.Writer
	over     chan struct{} // closed when the output passes max
	exceeded bool
	detached bool
	lineTracker
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	if c.exceeded || c.detached {
		return n, nil
	}
	if room := c.max - c.n; int64(len(p)) > room {
		p = p[:room]
		c.exceeded = true
		close(c.over)
	}
	c.n += int64(len(p))
	if len(p) > 0 {
		if c.sink != nil {
			_, _ = c.sink.Write(p) // a send error means the agent went away: ctx ends the run
		}
		c.track(p)
	}
	return n, nil
}

// detach stops forwarding (no write reaches the sink after it returns) and
// returns the lines seen and whether the output passed max.
func (c *capture) detach() (lineTracker, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.detached = true
	c.finish()
	return c.lineTracker, c.exceeded
}

// lineTracker follows output line by line, keeping the last lines and the
// markers the script contract defines.
type lineTracker struct {
	partial  []byte
	tail     []string // the last non-blank lines, at most tailLines
	lastLine string   // the last non-blank line, trimmed
	lastText string   // the last non-blank line that is not a marker
	reboot   bool     // a patchbay:reboot-required line was seen
}

func (t *lineTracker) track(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.add(p)
			return
		}
		t.add(p[:i])
		t.endLine()
		p = p[i+1:]
	}
}

func (t *lineTracker) add(p []byte) {
	if room := maxTrackedLine - len(t.partial); room > 0 {
		t.partial = append(t.partial, p[:min(room, len(p))]...)
	}
}

func (t *lineTracker) endLine() {
	s := strings.TrimSpace(strings.ToValidUTF8(string(t.partial), "\uFFFD"))
	t.partial = t.partial[:0]
	if s == "" {
		return
	}
	if len(t.tail) == tailLines {
		t.tail = append(t.tail[:0], t.tail[1:]...)
	}
	t.tail = append(t.tail, s)
	t.lastLine = s
	switch s {
	case markReboot:
		t.reboot = true
	case markUnchanged:
	default:
		t.lastText = s
	}
}

// finish ends an unterminated last line.
func (t *lineTracker) finish() {
	if len(t.partial) > 0 {
		t.endLine()
	}
}
