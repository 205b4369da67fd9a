//go:build linux

package sshd

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/agent/desktop"
	"github.com/patchbay/patchbay/agent/desktop/rfbclient"
	"github.com/patchbay/patchbay/agent/desktop/rfbtest"
	"github.com/patchbay/patchbay/internal/wire"
)

// requestDesktop sends wire.DesktopRequest and decodes the reply; a refusal
// is returned as an error holding the agent's message.
func requestDesktop(c *ssh.Client) (wire.DesktopReply, error) {
	var rep wire.DesktopReply
	ok, payload, err := c.SendRequest(wire.DesktopRequest, true, nil)
	if err != nil {
		return rep, err
	}
	if !ok {
		return rep, errors.New(string(payload))
	}
	return rep, ssh.Unmarshal(payload, &rep)
}

func TestDesktopRefusedWithoutTheCapability(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(wire.CapShell, wire.CapForward)
	cfg.Desktop = desktop.New(desktop.Options{Config: desktop.Config{Display: ":987"}})
	cfg.ViewOnlyCopy = desktop.CopyViewOnly
	c := f.client(f.serve(cfg))
	_, err := requestDesktop(c)
	if err == nil || !strings.Contains(err.Error(), `patchbay: desktop refused: it needs the "desktop" or "desktop-view" capability, and this session was approved for ["shell" "forward"]`) {
		t.Fatalf("desktop without the capability: %v", err)
	}
	// Granted, but this agent has no desktop for the session.
	f2 := newFixture(t)
	c2 := f2.client(f2.serve(f2.config(wire.CapDesktop)))
	if _, err := requestDesktop(c2); err == nil || !strings.Contains(err.Error(), "serves no desktop") {
		t.Fatalf("desktop without Config.Desktop: %v", err)
	}
	// A display that does not exist: the technician is told which and what to set.
	f3 := newFixture(t)
	cfg3 := f3.config(wire.CapDesktop)
	cfg3.Desktop = desktop.New(desktop.Options{Config: desktop.Config{Display: ":987"}})
	c3 := f3.client(f3.serve(cfg3))
	if _, err := requestDesktop(c3); err == nil || !strings.HasPrefix(err.Error(), "patchbay: desktop: x11vnc could not serve display :987") {
		t.Fatalf("desktop on a missing display: %v", err)
	}
}

// TestDesktopThroughSSH runs x11vnc without -viewonly in both sessions: in
// the desktop-view one only sshd's filter keeps the pointer still.
func TestDesktopThroughSSH(t *testing.T) {
	rfbtest.Need(t, "Xvfb", "x11vnc", "xdotool")
	display := rfbtest.StartXvfb(t, "1024x768x24")
	echo := echoServer(t)
	for _, tc := range []struct {
		cap      string
		x, y     int
		moves    bool
		viewOnly bool
	}{
		{wire.CapDesktop, 100, 200, true, false},
		{wire.CapDesktopView, 300, 500, false, true},
	} {
		t.Run(tc.cap, func(t *testing.T) {
			f := newFixture(t)
			cfg := f.config(tc.cap)
			d := desktop.New(desktop.Options{Config: desktop.Config{Display: display},
				Log: zerolog.New(f.logs)})
			cfg.Desktop = d
			cfg.ViewOnlyCopy = desktop.CopyViewOnly
			sv := f.serve(cfg)
			c := f.client(sv)
			rep, err := requestDesktop(c)
			if err != nil {
				t.Fatalf("desktop request: %v", err)
			}
			if rep.ViewOnly != tc.viewOnly || rep.Host != "127.0.0.1" || len(rep.Password) != 8 {
				t.Fatalf("reply %+v", rep)
			}
			addr := net.JoinHostPort(rep.Host, strconv.Itoa(int(rep.Port)))
			// Without forward, only the desktop's own address may be reached.
			if _, err := c.Dial("tcp", echo); err == nil || !strings.Contains(err.Error(), `it needs the \"forward\" capability`) {
				t.Errorf("direct-tcpip to another port: %v", err)
			}
			conn, err := c.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("direct-tcpip to the desktop: %v", err)
			}
			rc, err := rfbclient.Handshake(conn, rep.Password)
			if err != nil {
				t.Fatalf("RFB through SSH: %v", err)
			}
			defer rc.Close()
			if rc.Width != 1024 || rc.Height != 768 {
				t.Errorf("framebuffer %dx%d", rc.Width, rc.Height)
			}
			before := rfbtest.Pointer(t, display)
			if err := rc.Pointer(0, tc.x, tc.y); err != nil {
				t.Fatal(err)
			}
			// The server handles messages in order: once the update
			// requested after the pointer event arrives, the event was handled.
			if err := rc.RequestUpdate(false); err != nil {
				t.Fatal(err)
			}
			if _, err := rc.ReadUpdate(); err != nil {
				t.Fatal(err)
			}
			after := rfbtest.Pointer(t, display)
			want := "x:" + strconv.Itoa(tc.x) + " y:" + strconv.Itoa(tc.y)
			if tc.moves && after != want {
				t.Errorf("pointer at %q, want %q", after, want)
			}
			if !tc.moves && after != before {
				t.Errorf("view only: the pointer moved from %q to %q", before, after)
			}
			// Serve leaves the desktop to its owner, who stops it after the
			// session's end (the session manager, after reporting the end).
			sv.cancel(errors.New("test done"))
			if err := sv.wait(t, 10*time.Second); err == nil {
				t.Error("Serve returned nil after cancel")
			}
			d.Stop()
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				t.Errorf("x11vnc still listens on %s after the session ended", addr)
			}
		})
	}
}
