//go:build linux

package consent

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/user"
	"strings"
)

// peerUser names the local user whose program (the browser) opened r's
// connection, found through the socket's owner in /proc/net/tcp{,6}; "web
// user" when it cannot be told.
func peerUser(r *http.Request) string {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return webUser
	}
	ours, err1 := netip.ParseAddrPort(local.String())
	theirs, err2 := netip.ParseAddrPort(r.RemoteAddr)
	if err1 != nil || err2 != nil {
		return webUser
	}
	uid, ok := socketOwner(theirs, ours)
	if !ok {
		return webUser
	}
	if u, err := user.LookupId(uid); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid " + uid
}

// socketOwner returns the uid owning the TCP socket local -> remote.
func socketOwner(local, remote netip.AddrPort) (string, bool) {
	for _, f := range []struct {
		path string
		v6   bool
	}{{"/proc/net/tcp", false}, {"/proc/net/tcp6", true}} {
		if !f.v6 && !(local.Addr().Unmap().Is4() && remote.Addr().Unmap().Is4()) {
			continue
		}
		data, err := os.ReadFile(f.path)
		if err != nil {
			continue
		}
		l, r := procAddr(local, f.v6), procAddr(remote, f.v6)
		for line := range strings.Lines(string(data)) {
			fields := strings.Fields(line)
			if len(fields) > 7 && fields[1] == l && fields[2] == r {
				return fields[7], true
			}
		}
	}
	return "", false
}

// procAddr writes an address as /proc/net/tcp does: the address as
// native-endian 32-bit words in hex, a colon, the port.
func procAddr(ap netip.AddrPort, v6 bool) string {
	var b []byte
	if v6 {
		a := ap.Addr().As16() // an IPv4 address becomes ::ffff:a.b.c.d
		b = a[:]
	} else {
		a := ap.Addr().Unmap().As4()
		b = a[:]
	}
	var s strings.Builder
	for i := 0; i < len(b); i += 4 {
		fmt.Fprintf(&s, "%08X", binary.NativeEndian.Uint32(b[i:i+4]))
	}
	fmt.Fprintf(&s, ":%04X", ap.Port())
	return s.String()
}
