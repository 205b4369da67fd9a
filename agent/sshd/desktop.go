package sshd

import (
	"context"
	"io"
	"net"
	"strconv"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/wire"
)

// Desktop is the screen of one session (agent/desktop.Server): Start starts
// its VNC server when it is not running and says where it listens; its
// errors are shown to the technician. Serve never stops it: its owner (the
// session manager) calls Stop after Serve has returned and the end of the
// session has been reported, so that a VNC server slow to exit does not hold
// the report back.
type Desktop interface {
	Start(ctx context.Context) (wire.DesktopReply, error)
	Stop()
}

// CopyFunc copies a VNC client's bytes to the server (desktop.CopyViewOnly).
type CopyFunc func(dst io.Writer, src io.Reader) (int64, error)

// desktopState is where the session's desktop listens, once started.
type desktopState struct {
	addr     string // "127.0.0.1:5900", the only address desktop channels reach
	viewOnly bool
}

// desktopRequest answers wire.DesktopRequest: the session's VNC server, or
// why not.
func (s *server) desktopRequest(ctx context.Context, req *ssh.Request) {
	full, view := s.granted(wire.CapDesktop), s.granted(wire.CapDesktopView)
	refuse := func(msg string) {
		s.log.Warn().Msg(msg)
		_ = req.Reply(false, []byte(msg))
	}
	switch {
	case !full && !view:
		refuse(s.refusal("desktop", wire.CapDesktop, wire.CapDesktopView))
		return
	case s.cfg.Desktop == nil:
		refuse("patchbay: desktop: this agent serves no desktop for this session (it was not configured with one)")
		return
	case !full && s.cfg.ViewOnlyCopy == nil:
		refuse("patchbay: desktop: this session is view only, and the agent has no view-only filter to enforce it")
		return
	}
	rep, err := s.cfg.Desktop.Start(ctx)
	if err != nil {
		refuse("patchbay: desktop: " + err.Error())
		return
	}
	targets, ok := loopbackTargets(rep.Host, rep.Port)
	if !ok || rep.Port == 0 || rep.Port > 65535 {
		refuse("patchbay: desktop: the VNC server is not on this machine's loopback (" +
			net.JoinHostPort(rep.Host, strconv.FormatUint(uint64(rep.Port), 10)) + ")")
		return
	}
	rep.ViewOnly = rep.ViewOnly || !full
	addr := targets[0]
	s.mu.Lock()
	s.desktop = desktopState{addr: addr, viewOnly: rep.ViewOnly}
	s.mu.Unlock()
	s.log.Info().Str("desktop", addr).Str("server", rep.Server).Bool("view_only", rep.ViewOnly).Msg("desktop ready")
	_ = req.Reply(true, ssh.Marshal(rep))
}

// desktopTarget reports whether a direct-tcpip channel to one of targets
// reaches the session's desktop, and whether it is view only.
func (s *server) desktopTarget(targets []string) (isDesktop, viewOnly bool) {
	s.mu.Lock()
	d := s.desktop
	s.mu.Unlock()
	if d.addr == "" {
		return false, false
	}
	for _, t := range targets {
		if t == d.addr {
			return true, d.viewOnly
		}
	}
	return false, false
}
