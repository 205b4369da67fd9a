// Package desktop is the agent's side of the remote desktop (wire.CapDesktop,
// wire.CapDesktopView): for one approved SSH session it starts a VNC server
// on this machine's loopback, or names the endpoint's own, and reports
// where it listens (wire.DesktopReply). agent/sshd answers the client's
// wire.DesktopRequest with it and lets the client's direct-tcpip channel
// reach that address only; with view only, sshd copies the client's bytes
// through CopyViewOnly, which drops keyboard, pointer and clipboard input.
//
// On Linux and the BSDs with X11 the server is x11vnc, started for the
// session only (Server.Start) on the display Config.Display, bound to
// 127.0.0.1 on the first free port from 5900, with a fresh random 8-character
// password that x11vnc reads from a 0600 file and deletes; with view only it
// also runs -viewonly. It runs as the session's local user when one is set
// (the agent runs as root), and Server.Stop kills it and waits for it when
// the session ends. One server serves the whole session: a viewer that
// reconnects (a browser reloading the page) reaches the same server, and a
// server that exited is started again with a new password.
//
// Elsewhere (Windows: a TightVNC or UltraVNC service; macOS: Screen
// Sharing), or wherever Config.VNC is set, the desktop is the VNC server at
// that loopback address; it asks the technician for its own password.
package desktop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/wire"
)

// FileName is the agent's desktop settings file in its data directory.
const FileName = "desktop.json"

// Config is the endpoint's desktop settings, kept in DATA/desktop.json
// (patchbay-agent run --desktop-display, --desktop-xauthority, --desktop-vnc).
type Config struct {
	// Display is the X display x11vnc shows, e.g. ":0"; default the agent's
	// $DISPLAY, else ":0".
	Display string `json:"desktop_display,omitempty"`
	// XAuthority is the X authority file for Display (x11vnc -auth); default
	// none (x11vnc then uses $XAUTHORITY of the agent, if any).
	XAuthority string `json:"desktop_xauthority,omitempty"`
	// VNC is the loopback address of the endpoint's own VNC server, e.g.
	// "127.0.0.1:5900". When set, no x11vnc is started.
	VNC string `json:"desktop_vnc,omitempty"`
}

// Validate checks the settings.
func (c Config) Validate() error {
	if c.VNC != "" {
		if _, _, err := loopbackAddr(c.VNC); err != nil {
			return fmt.Errorf("desktop_vnc %q: %w", c.VNC, err)
		}
	}
	if c.XAuthority != "" && !filepath.IsAbs(c.XAuthority) {
		return fmt.Errorf("desktop_xauthority %q: not an absolute path", c.XAuthority)
	}
	if c.Display != "" && (len(c.Display) > 64 || c.Display[0] == '-') {
		return fmt.Errorf("desktop_display %q: not an X display name such as :0", c.Display)
	}
	return nil
}

// loopbackAddr parses "HOST:PORT" whose host is a loopback IP address.
func loopbackAddr(s string) (string, uint32, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, errors.New("want HOST:PORT, e.g. 127.0.0.1:5900")
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() || ip.Zone() != "" {
		return "", 0, errors.New("the host must be a loopback IP address (127.0.0.1 or ::1): the agent reaches only this machine's own VNC server")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return ip.Unmap().String(), uint32(p), nil
}

// ConfigPath is DATA/desktop.json.
func ConfigPath(dir string) string { return filepath.Join(dir, FileName) }

// LoadConfig reads DATA/desktop.json; a missing file is the default (zero) Config.
func LoadConfig(dir string) (Config, error) {
	var c Config
	b, err := os.ReadFile(ConfigPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("desktop settings: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("desktop settings %s: %w (fix or remove the file)", ConfigPath(dir), err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("desktop settings %s: %w", ConfigPath(dir), err)
	}
	return c, nil
}

// SaveConfig validates c and writes DATA/desktop.json atomically, mode 0600.
func SaveConfig(dir string, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, FileName+".tmp*")
	if err != nil {
		return fmt.Errorf("save desktop settings: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save desktop settings: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save desktop settings: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("save desktop settings: %w", err)
	}
	if err := os.Rename(tmp.Name(), ConfigPath(dir)); err != nil {
		return fmt.Errorf("save desktop settings: %w", err)
	}
	return nil
}

// Options configures one session's Server.
type Options struct {
	Config
	// ViewOnly starts x11vnc with -viewonly (sshd drops input either way).
	ViewOnly bool
	// Credential runs x11vnc as this local user (the agent must be root);
	// nil runs it as the agent's account.
	Credential *Credential
	Log        zerolog.Logger
}

// startTimeout bounds how long x11vnc may take to say which port it listens on.
const startTimeout = 20 * time.Second

// Server is the desktop of one SSH session. Start and Stop are safe for
// concurrent use; Stop ends it for good.
type Server struct {
	opts Options

	mu      sync.Mutex // held while starting, so concurrent Starts share one server
	stopped bool
	vnc     *x11vnc // the running x11vnc, or nil
}

// New returns the desktop of one session; nothing starts until Start.
func New(opts Options) *Server { return &Server{opts: opts} }

// Start starts the session's VNC server when it is not running and says
// where it listens. Its errors are meant for the technician, e.g.
// "x11vnc is not installed on this machine (apt-get install x11vnc)".
func (s *Server) Start(ctx context.Context) (wire.DesktopReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return wire.DesktopReply{}, errors.New("the session is ending")
	}
	if s.opts.VNC != "" {
		return s.external(ctx)
	}
	if !x11Supported {
		return wire.DesktopReply{}, fmt.Errorf("no VNC server is configured on this %s machine: install one (Windows: TightVNC or UltraVNC as a service; macOS: turn on Screen Sharing) and set desktop_vnc to its loopback address (patchbay-agent run --desktop-vnc 127.0.0.1:5900)", runtime.GOOS)
	}
	if s.vnc != nil {
		if s.vnc.running() {
			return s.vnc.reply, nil
		}
		s.opts.Log.Warn().Str("output", s.vnc.out.String()).Msg("x11vnc had exited; starting it again")
		s.vnc.stop()
		s.vnc = nil
	}
	v, err := startX11VNC(ctx, s.opts)
	if err != nil {
		return wire.DesktopReply{}, err
	}
	s.vnc = v
	s.opts.Log.Info().Str("display", v.display).Uint32("port", v.reply.Port).Bool("view_only", s.opts.ViewOnly).Msg("x11vnc started for the session")
	return v.reply, nil
}

// external is the endpoint's own VNC server (Config.VNC), checked reachable.
func (s *Server) external(ctx context.Context) (wire.DesktopReply, error) {
	host, port, err := loopbackAddr(s.opts.VNC)
	if err != nil {
		return wire.DesktopReply{}, fmt.Errorf("desktop_vnc %q: %w", s.opts.VNC, err)
	}
	addr := net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	if err != nil {
		return wire.DesktopReply{}, fmt.Errorf("the VNC server named by desktop_vnc (%s) does not answer: start it, or correct desktop_vnc (%v)", addr, err)
	}
	_ = c.Close()
	return wire.DesktopReply{Host: host, Port: port, ViewOnly: s.opts.ViewOnly, Server: "VNC server at " + addr + " (desktop_vnc)"}, nil
}

// Stop kills the session's x11vnc, if any, and waits for it. Later Starts fail.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.vnc != nil {
		s.vnc.stop()
		s.opts.Log.Info().Msg("x11vnc stopped: the session ended")
		s.vnc = nil
	}
}

// display is the X display to show.
func (o Options) display() string {
	if o.Display != "" {
		return o.Display
	}
	if d := os.Getenv("DISPLAY"); d != "" {
		return d
	}
	return ":0"
}

// tailBuffer keeps the last bytes written to it (a process's output, for errors).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 2048

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > tailMax {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
