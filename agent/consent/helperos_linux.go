package consent

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultHelperSocket is where the service listens for helpers.
const DefaultHelperSocket = "/run/patchbay-agent/helper.sock"

const macSessions = false

// peerUID returns the uid of the process at the other end of a unix socket
// (SO_PEERCRED: the kernel's word, set when it connected).
func peerUID(c *net.UnixConn) (string, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return "", err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) { cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return "", err
	}
	if serr != nil {
		return "", fmt.Errorf("peer credentials: %w", serr)
	}
	return strconv.FormatUint(uint64(cred.Uid), 10), nil
}

// systemSessions reads logind where it runs, else X displays.
func systemSessions() sessionSource {
	if logindRunning() {
		return logindSessions{}
	}
	return x11Sessions{}
}

// logindSessions asks systemd-logind through loginctl.
type logindSessions struct{}

func (logindSessions) owner(session string) (string, error) {
	if !validLogindID(session) {
		if _, err := x11Display(session); err == nil {
			return "", fmt.Errorf("session %q: this machine runs systemd-logind, claim the logind session (XDG_SESSION_ID)", session)
		}
		return "", fmt.Errorf("session %q is not a logind session ID", session)
	}
	out, err := loginctl("show-session", session, "-p", "User")
	if err != nil {
		return "", errNoSession
	}
	uid, ok := loginctlProperty(out, "User")
	if !ok || uid == "" {
		return "", errNoSession
	}
	return uid, nil
}

func (logindSessions) console() string {
	out, err := loginctl("show-seat", "seat0", "-p", "ActiveSession")
	if err != nil {
		return ""
	}
	s, _ := loginctlProperty(out, "ActiveSession")
	return s
}

func loginctl(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "loginctl", append([]string{"--no-pager"}, args...)...).Output()
}

// x11Sessions: every local X display is a session, owned by the owner of
// its socket; the console is display :0.
type x11Sessions struct{}

func (x11Sessions) owner(session string) (string, error) {
	n, err := x11Display(session)
	if err != nil {
		return "", err
	}
	return fileOwner(x11Socket(n))
}

func (x11Sessions) console() string { return "x11::0" }
