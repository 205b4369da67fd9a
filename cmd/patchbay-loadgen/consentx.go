//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// xEvent is one window event on the root window of a display, as xev
// printed it, timestamped when its first line was read.
type xEvent struct {
	kind     string // MapNotify, UnmapNotify, DestroyNotify
	win      string // window ID in decimal, as xdotool takes it
	override bool   // override-redirect (menus, tooltips): never a dialog
	at       time.Time
}

// xevWatch is `xev -root -event substructure` on a display: every window
// mapped, unmapped or destroyed on it, as the X server reports it.
type xevWatch struct {
	display string
	cmd     *exec.Cmd
	events  chan xEvent
	exited  chan struct{}
}

// startXev starts xev on display; its raw output is copied to logPath.
func startXev(display, logPath string) (*xevWatch, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("xev", "-root", "-event", "substructure")
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	setDeathSignal(cmd, syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start xev: %w", err)
	}
	x := &xevWatch{display: display, cmd: cmd, events: make(chan xEvent, 4096), exited: make(chan struct{})}
	go func() {
		defer close(x.exited)
		defer logf.Close()
		parseXev(io.TeeReader(out, logf), time.Now, func(e xEvent) {
			select {
			case x.events <- e:
			default: // nobody is waiting and the buffer is full: drop it
			}
		})
		cmd.Wait()
	}()
	return x, nil
}

func (x *xevWatch) stop() {
	x.cmd.Process.Kill()
	<-x.exited
}

var xevWindow = regexp.MustCompile(`\bwindow 0x([0-9a-fA-F]+)`)

// parseXev reads xev's output and calls emit for each MapNotify,
// UnmapNotify and DestroyNotify, timestamped by now when the event's first
// line is read. xev prints an event as a header line ("MapNotify event,
// serial 19, synthetic NO, window 0x50d,": the window is the root) and
// indented lines ("    event 0x50d, window 0x400008, override NO").
func parseXev(r io.Reader, now func() time.Time, emit func(xEvent)) error {
	sc := bufio.NewScanner(r)
	var cur *xEvent
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			cur = nil
			kind, _, ok := strings.Cut(line, " event, ")
			if ok && (kind == "MapNotify" || kind == "UnmapNotify" || kind == "DestroyNotify") {
				cur = &xEvent{kind: kind, at: now()}
			}
			continue
		}
		if cur == nil {
			continue
		}
		if m := xevWindow.FindStringSubmatch(line); m != nil {
			id, err := strconv.ParseUint(m[1], 16, 32)
			if err != nil {
				continue
			}
			cur.win = strconv.FormatUint(id, 10)
			cur.override = strings.Contains(line, "override YES")
			emit(*cur)
			cur = nil
		}
	}
	return sc.Err()
}

// waitMap waits for a window titled title to be mapped after since, and
// returns it and when its MapNotify arrived. It gives up when ctx ends,
// after 30 s, or when abort is closed (the process or request behind the
// window ended first).
func (x *xevWatch) waitMap(ctx context.Context, since time.Time, title string, abort <-chan struct{}) (string, time.Time, error) {
	limit := time.NewTimer(30 * time.Second)
	defer limit.Stop()
	for {
		select {
		case e := <-x.events:
			if e.kind != "MapNotify" || e.override || e.at.Before(since) {
				continue
			}
			if name, err := xdo(x.display, "getwindowname", e.win); err == nil && name == title {
				return e.win, e.at, nil
			}
		case <-abort:
			return "", time.Time{}, errors.New("ended before its window was mapped")
		case <-limit.C:
			return "", time.Time{}, fmt.Errorf("no window %q mapped within 30 s", title)
		case <-x.exited:
			return "", time.Time{}, errors.New("xev exited")
		case <-ctx.Done():
			return "", time.Time{}, ctx.Err()
		}
	}
}

// waitGone waits up to within for win to be unmapped or destroyed, and
// returns when it was.
func (x *xevWatch) waitGone(ctx context.Context, win string, within time.Duration) (time.Time, bool) {
	limit := time.NewTimer(within)
	defer limit.Stop()
	for {
		select {
		case e := <-x.events:
			if e.win == win && (e.kind == "UnmapNotify" || e.kind == "DestroyNotify") {
				return e.at, true
			}
		case <-limit.C:
			return time.Time{}, false
		case <-x.exited:
			return time.Time{}, false
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
}

// xdo runs xdotool on display.
func xdo(display string, args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// listenUnix listens on a unix socket at path, replacing a stale one.
func listenUnix(path string) (net.Listener, error) {
	os.Remove(path)
	return net.Listen("unix", path)
}
