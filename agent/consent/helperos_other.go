//go:build !linux && !darwin && !windows

package consent

import (
	"fmt"
	"net"
	"runtime"
)

// DefaultHelperSocket is where the service listens for helpers.
const DefaultHelperSocket = "/run/patchbay-agent/helper.sock"

const macSessions = false

// peerUID: peer credentials are not read on this system (Windows uses a
// named pipe with an ACL for interactive users; not built yet).
func peerUID(*net.UnixConn) (string, error) {
	return "", fmt.Errorf("helper backend: peer credentials are not supported on %s", runtime.GOOS)
}

func systemSessions() sessionSource { return noSessions{} }

type noSessions struct{}

func (noSessions) owner(string) (string, error) {
	return "", fmt.Errorf("helper backend: sessions are not supported on %s", runtime.GOOS)
}

func (noSessions) console() string { return "" }
