package auditfwd

import (
	"net"

	"golang.org/x/sys/unix"
)

// unacked returns the bytes in c's send queue that the peer has not yet
// acknowledged (SIOCOUTQ).
func unacked(c *net.TCPConn) (int, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var (
		n    int
		ierr error
	)
	if err := raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil || ierr != nil {
		return 0, false
	}
	return n, true
}
