package consent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Sessions of the people logged in at the machine, as the helper backend
// sees them. A helper claims one; the service believes the claim only when
// the session belongs to the user at the other end of the socket.
//
// A session is named:
//   - by its systemd-logind ID ("3", "c2") where logind runs (Linux desktops);
//     its owner and the console's session (seat0's active one) come from
//     loginctl;
//   - "x11:DISPLAY" ("x11::0") on a Linux or BSD machine without logind: its
//     owner is the owner of the X server's socket /tmp/.X11-unix/XN (the
//     user who started the X server), and the console is display :0;
//   - "console" on macOS: its owner is the owner of /dev/console, the user
//     at the login window's desktop.
type sessionSource interface {
	// owner returns the uid (decimal) of the user that session belongs to.
	owner(session string) (string, error)
	// console returns the console's session, "" when nobody is at it.
	console() string
}

// errNoSession: the claimed session does not exist here.
var errNoSession = errors.New("no such session on this machine")

// x11Display parses "x11::N" or "x11::N.S" and returns N.
func x11Display(session string) (int, error) {
	d, ok := strings.CutPrefix(session, "x11:")
	if !ok {
		return 0, fmt.Errorf("session %q is not an X display (want x11::N)", session)
	}
	d, ok = strings.CutPrefix(d, ":")
	if !ok {
		return 0, fmt.Errorf("session %q: only local displays (:N) are sessions", session)
	}
	if i := strings.IndexByte(d, '.'); i >= 0 {
		d = d[:i]
	}
	n, err := strconv.Atoi(d)
	if err != nil || n < 0 || n > 65535 || strconv.Itoa(n) != d {
		return 0, fmt.Errorf("session %q: bad display number", session)
	}
	return n, nil
}

// x11Socket is the socket of local display n.
func x11Socket(n int) string { return filepath.Join(x11SocketDir, "X"+strconv.Itoa(n)) }

// x11SocketDir is where X servers put their sockets.
const x11SocketDir = "/tmp/.X11-unix"

// validLogindID reports whether s can be a logind session ID (letters and
// digits, as logind makes them), so that it is safe as a loginctl argument.
func validLogindID(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// loginctlProperty reads "NAME=value" from loginctl show-* output.
func loginctlProperty(out []byte, name string) (string, bool) {
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// fileOwner returns the uid owning path (not following a final symlink).
func fileOwner(path string) (string, error) {
	st, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", errNoSession
		}
		return "", err
	}
	if st.Mode()&os.ModeSymlink != 0 {
		return "", fmt.Errorf("%s is a symbolic link", path)
	}
	uid, ok := statUID(st)
	if !ok {
		return "", fmt.Errorf("%s: owner unknown on this system", path)
	}
	return uid, nil
}

// ClaimSession returns the session the calling process is in, as a helper
// claims it: the logind session when logind runs and XDG_SESSION_ID is set,
// else "x11:$DISPLAY" where DISPLAY is set, else "console" on macOS.
func ClaimSession() (string, error) {
	return claimSession(os.Getenv)
}

func claimSession(getenv func(string) string) (string, error) {
	if id := getenv("XDG_SESSION_ID"); id != "" && validLogindID(id) && logindRunning() {
		return id, nil
	}
	if d := getenv("DISPLAY"); d != "" {
		if _, err := x11Display("x11:" + d); err != nil {
			return "", err
		}
		return "x11:" + d, nil
	}
	if macSessions {
		return "console", nil
	}
	return "", errors.New("no graphical session: neither XDG_SESSION_ID (with logind) nor DISPLAY is set; start the helper from the desktop session (XDG autostart)")
}

// logindRunning reports whether systemd-logind manages sessions here:
// systemd is the init system (sd_booted: /run/systemd/system exists) and
// logind keeps seats. A container may have the directories of a package
// install without either running.
func logindRunning() bool {
	for _, dir := range []string{"/run/systemd/system", "/run/systemd/seats"} {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return false
		}
	}
	return true
}
