package logging

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair with plain syscalls (no cgo, no extra
// module): the controller side and the terminal side.
func openPTY(t *testing.T) (controller, tty *os.File) {
	t.Helper()
	c, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, c.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		c.Close()
		t.Skipf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, c.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		c.Close()
		t.Skipf("ptsname: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		c.Close()
		t.Skipf("open pts: %v", err)
	}
	t.Cleanup(func() { s.Close(); c.Close() })
	return c, s
}

func TestTerminalGetsConsole(t *testing.T) {
	restoreGlobals(t)
	t.Setenv("NO_COLOR", "")
	controller, tty := openPTY(t)
	if !isTerminal(tty) {
		t.Fatal("isTerminal(pts) = false")
	}
	logger, err := Setup(tty, "info", "auto")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info().Msg("on a terminal")
	got := readSome(t, controller, "on a terminal")
	if strings.HasPrefix(strings.TrimSpace(got), "{") {
		t.Errorf("terminal output is JSON: %q", got)
	}
	if !strings.Contains(got, "\x1b[") {
		t.Errorf("terminal output has no colour: %q", got)
	}

	// "json" wins over the terminal.
	logger, err = Setup(tty, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info().Msg("json please")
	got = readSome(t, controller, "json please")
	if !strings.Contains(got, `"message":"json please"`) {
		t.Errorf("format json on a terminal gave %q", got)
	}
}

func TestPipeIsNotTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) || isTerminal(&bytes.Buffer{}) {
		t.Error("a pipe or a buffer was taken for a terminal")
	}
}

// readSome reads from f until want appears or a deadline passes.
func readSome(t *testing.T, f *os.File, want string) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(5 * time.Second)
	f.SetReadDeadline(deadline)
	for !bytes.Contains(got, []byte(want)) && time.Now().Before(deadline) {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil && err != io.EOF {
			break
		}
	}
	return string(got)
}
