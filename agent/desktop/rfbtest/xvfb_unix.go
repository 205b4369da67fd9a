//go:build unix

package rfbtest

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartXvfb starts Xvfb on a free display with one screen of geometry
// (e.g. "1280x800x24") and returns the display, ":N". It is killed, and
// waited for, when the test ends. It runs with -noreset: otherwise the
// server resets when its last client leaves, and the background that
// xsetroot -solid set goes back to black as soon as xsetroot exits.
func StartXvfb(t testing.TB, geometry string) string {
	t.Helper()
	Need(t, "Xvfb")
	// X servers put their sockets here; make sure it exists with the right mode.
	if err := os.MkdirAll("/tmp/.X11-unix", 0o1777); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-noreset", "-screen", "0", geometry, "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	_ = r.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(r).ReadString('\n')
	n := strings.TrimSpace(line)
	if _, aerr := strconv.Atoi(n); aerr != nil {
		t.Fatalf("Xvfb did not report its display number (%q, %v)", n, errors.Join(err, aerr))
	}
	return ":" + n
}
