package desktop_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/patchbay/patchbay/agent/desktop"
)

// When PATCHBAY_DESKTOP_CHILD names a display, this test binary plays an
// agent: it starts the display's x11vnc, says "ready" and waits to be killed.
func init() {
	display := os.Getenv("PATCHBAY_DESKTOP_CHILD")
	if display == "" {
		return
	}
	s := desktop.New(desktop.Options{Config: desktop.Config{Display: display}, Log: zerolog.Nop()})
	if _, err := s.Start(context.Background()); err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	select {}
}

// An agent killed with SIGKILL (no chance to stop anything) takes its
// session's x11vnc with it: the VNC server never outlives the agent.
func TestX11VNCDiesWithAKilledAgent(t *testing.T) {
	display := screen(t, "black")
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "PATCHBAY_DESKTOP_CHILD="+display)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("the child agent: %q %v", line, err)
	}
	vnc := childrenNamed(t, child.Process.Pid, "x11vnc")
	if len(vnc) != 1 {
		t.Fatalf("x11vnc processes of the child: %v, want one", vnc)
	}
	// A pidfd becomes readable when its process exits: the event to wait on
	// for a process that is not our child.
	pidfd, err := unix.PidfdOpen(vnc[0], 0)
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", vnc[0], err)
	}
	defer unix.Close(pidfd)
	child.Process.Kill()
	child.Wait()
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 5000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll the pidfd of x11vnc: %v", err)
		}
		if n == 0 {
			exec.Command("kill", "-9", strconv.Itoa(vnc[0])).Run()
			t.Fatalf("x11vnc (pid %d) still runs 5 s after its agent was killed", vnc[0])
		}
		return
	}
}

// childrenNamed lists the PIDs of ppid's children whose command is name.
func childrenNamed(t *testing.T, ppid int, name string) []int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) < 2 || s[open+1:close] != name {
			continue
		}
		if pp, _ := strconv.Atoi(fields[1]); pp == ppid {
			pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
			out = append(out, pid)
		}
	}
	return out
}
