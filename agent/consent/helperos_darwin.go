package consent

import (
	"fmt"
	"net"
	"strconv"

	"golang.org/x/sys/unix"
)

// DefaultHelperSocket is where the service listens for helpers.
const DefaultHelperSocket = "/var/run/patchbay-agent/helper.sock"

const macSessions = true

// peerUID returns the uid of the process at the other end of a unix socket
// (LOCAL_PEERCRED).
func peerUID(c *net.UnixConn) (string, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return "", err
	}
	var cred *unix.Xucred
	var serr error
	if err := raw.Control(func(fd uintptr) { cred, serr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED) }); err != nil {
		return "", err
	}
	if serr != nil {
		return "", fmt.Errorf("peer credentials: %w", serr)
	}
	return strconv.FormatUint(uint64(cred.Uid), 10), nil
}

// systemSessions: macOS has one graphical console session, owned by the
// owner of /dev/console (the user whose desktop is on screen).
func systemSessions() sessionSource { return macConsole{} }

type macConsole struct{}

func (macConsole) owner(session string) (string, error) {
	if session != "console" {
		return "", fmt.Errorf("session %q: on macOS the only session is \"console\"", session)
	}
	return fileOwner("/dev/console")
}

func (macConsole) console() string { return "console" }
