package consent

import (
	"errors"
	"net"
	"strconv"

	"golang.org/x/sys/windows"
)

// DefaultHelperSocket is not used on Windows: the service launches the
// helpers itself and talks to them over pipes.
const DefaultHelperSocket = `\\.\pipe\patchbay-helper (unused on Windows)`

const macSessions = false

// peerUID: Windows helpers are launched by the service, never accepted from
// a socket.
func peerUID(*net.UnixConn) (string, error) {
	return "", errors.New("helper backend: Windows helpers are launched by the service, not accepted on a socket")
}

// systemSessions: Windows terminal-services sessions, named "wts:N"; the
// console is the active console session.
func systemSessions() sessionSource { return wtsSessions{} }

type wtsSessions struct{}

func (wtsSessions) owner(session string) (string, error) {
	return "", errors.New("helper backend: on Windows the service knows its helpers' users from the token it launched them with")
}

func (wtsSessions) console() string {
	id := windows.WTSGetActiveConsoleSessionId()
	if id == 0xFFFFFFFF { // nobody at the console (e.g. during a session switch)
		return ""
	}
	return wtsSession(id)
}

// wtsSession names session id.
func wtsSession(id uint32) string { return "wts:" + strconv.FormatUint(uint64(id), 10) }
