//go:build !(linux || freebsd || netbsd || openbsd || dragonfly)

package desktop

import (
	"context"
	"errors"

	"github.com/patchbay/patchbay/internal/wire"
)

// x11Supported: this system's desktop is a VNC server of its own (Config.VNC).
const x11Supported = false

type x11vnc struct {
	display string
	reply   wire.DesktopReply
	out     tailBuffer
}

func startX11VNC(context.Context, Options) (*x11vnc, error) {
	return nil, errors.New("x11vnc is not used on this system: set desktop_vnc")
}

func (v *x11vnc) running() bool { return false }
func (v *x11vnc) stop()         {}
