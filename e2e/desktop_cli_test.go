package e2e

import (
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchbay/patchbay/agent/desktop/rfbclient"
	"github.com/patchbay/patchbay/agent/desktop/rfbtest"
)

// desktopCLI is a running `patchbay desktop` and what it printed.
type desktopCLI struct {
	p                 *proc
	addr, password    string
	viewOnly, vserver string
}

// startDesktopCLI runs patchbay desktop and waits for the address and
// password it prints.
func (c *CLI) startDesktopCLI(t *testing.T, agent string, extra ...string) *desktopCLI {
	t.Helper()
	args := append([]string{bin("patchbay"), "desktop", agent, "--reason", "INC-77 screen frozen", "--listen", "127.0.0.1:0"}, extra...)
	d := &desktopCLI{p: startProc(t, "patchbay desktop", c.env, args...)}
	field := func(name string) string {
		for _, l := range strings.Split(d.p.log.String(), "\n") {
			if v, ok := strings.CutPrefix(l, name+": "); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	waitFor(t, 60*time.Second, "patchbay desktop to print the address and password", func() bool {
		if d.p.exited() {
			t.Fatalf("patchbay desktop exited:\n%s", d.p.log.String())
		}
		return field("server") != ""
	})
	d.addr, d.password, d.viewOnly, d.vserver = field("address"), field("password"), field("view-only"), field("server")
	return d
}

// rfb connects a VNC client to the CLI's local address.
func (d *desktopCLI) rfb(t *testing.T) *rfbclient.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", d.addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial patchbay desktop at %q: %v", d.addr, err)
	}
	c, err := rfbclient.Handshake(conn, d.password)
	if err != nil {
		conn.Close()
		t.Fatalf("VNC handshake through patchbay desktop: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// movePointer sends a PointerEvent and waits until the server has handled
// what was sent before the update it then asks for.
func movePointer(t *testing.T, c *rfbclient.Conn, x, y int) {
	t.Helper()
	if err := c.Pointer(0, x, y); err != nil {
		t.Fatal(err)
	}
	if err := c.Key(true, 'a'); err != nil {
		t.Fatal(err)
	}
	if err := c.Key(false, 'a'); err != nil {
		t.Fatal(err)
	}
	if err := c.RequestUpdate(false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadUpdate(); err != nil {
		t.Fatal(err)
	}
}

// TestDesktopCLI: a technician sees an agent's X screen (Xvfb + x11vnc
// started by the agent for the session) through `patchbay desktop` and a VNC
// client, controls it, and in a view-only session cannot.
func TestDesktopCLI(t *testing.T) {
	rfbtest.Need(t, "Xvfb", "x11vnc", "xsetroot", "xdotool")
	display := rfbtest.StartXvfb(t, "1280x800x24")
	if out, err := exec.Command("xsetroot", "-display", display, "-solid", "#3366cc").CombinedOutput(); err != nil {
		t.Fatalf("xsetroot: %v: %s", err, out)
	}
	f := newSessionFleet(t, "--desktop-display", display)

	// Control: the screen's colour comes through, and the pointer moves.
	d := f.alice.startDesktopCLI(t, f.agent.ID)
	if len(d.password) != 8 || d.viewOnly != "no" || d.vserver != "x11vnc on "+display {
		t.Fatalf("patchbay desktop printed password %q, view-only %q, server %q:\n%s", d.password, d.viewOnly, d.vserver, d.p.log.String())
	}
	c := d.rfb(t)
	if c.Width != 1280 || c.Height != 800 {
		t.Errorf("framebuffer %dx%d, want 1280x800", c.Width, c.Height)
	}
	if p, err := c.WaitPixel(10, 10, 0x3366cc, 15*time.Second); err != nil || p != 0x3366cc {
		t.Fatalf("pixel (10,10) = #%06x (%v), want #3366cc", p, err)
	}
	movePointer(t, c, 100, 200)
	if got := rfbtest.Pointer(t, display); got != "x:100 y:200" {
		t.Errorf("pointer at %q after a PointerEvent to 100,200 in a desktop session", got)
	}
	c.Close()
	d.p.signal(syscall.SIGINT)
	select {
	case <-d.p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("patchbay desktop did not end within 15s of Ctrl-C")
	}
	if code := d.p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("patchbay desktop after Ctrl-C: exit %d:\n%s", code, d.p.log.String())
	}

	// View only: the screen still comes through, the pointer stays put.
	v := f.alice.startDesktopCLI(t, f.agent.ID, "--view-only")
	if v.viewOnly != "yes" {
		t.Fatalf("--view-only: view-only %q", v.viewOnly)
	}
	vc := v.rfb(t)
	if p, err := vc.WaitPixel(10, 10, 0x3366cc, 15*time.Second); err != nil || p != 0x3366cc {
		t.Fatalf("view only: pixel (10,10) = #%06x (%v), want #3366cc", p, err)
	}
	before := rfbtest.Pointer(t, display)
	movePointer(t, vc, 300, 500)
	if got := rfbtest.Pointer(t, display); got != before {
		t.Errorf("view only: the pointer moved from %q to %q", before, got)
	}
	asked, _ := os.ReadFile(f.asked)
	if !strings.Contains(string(asked), `"desktop-view"`) || !strings.Contains(string(asked), `"desktop"`) {
		t.Errorf("the consent backend was not asked for desktop and desktop-view:\n%s", asked)
	}
	list := f.alice.sessions(t)
	if len(list) != 2 || !slices.Contains(list[0].Capabilities, "desktop-view") || !slices.Contains(list[1].Capabilities, "desktop") {
		var caps []string
		for _, s := range list {
			caps = append(caps, strconv.Quote(strings.Join(s.Capabilities, ",")))
		}
		t.Errorf("sessions list: capabilities %v, want the view-only session then the desktop one", caps)
	}
}
