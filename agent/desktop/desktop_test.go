//go:build linux

package desktop_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/agent/desktop"
	"github.com/patchbay/patchbay/agent/desktop/rfbclient"
	"github.com/patchbay/patchbay/agent/desktop/rfbtest"
	"github.com/patchbay/patchbay/internal/wire"
)

// screen is a real Xvfb with a solid background.
func screen(t *testing.T, colour string) string {
	t.Helper()
	rfbtest.Need(t, "Xvfb", "x11vnc", "xsetroot", "xdotool")
	display := rfbtest.StartXvfb(t, "1280x800x24")
	if out, err := exec.Command("xsetroot", "-display", display, "-solid", colour).CombinedOutput(); err != nil {
		t.Fatalf("xsetroot: %v: %s", err, out)
	}
	return display
}

func dialRFB(t *testing.T, r wire.DesktopReply, password string) (*rfbclient.Conn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port))), 10*time.Second)
	if err != nil {
		t.Fatalf("dial the desktop at %s:%d: %v", r.Host, r.Port, err)
	}
	rc, err := rfbclient.Handshake(c, password)
	if err != nil {
		c.Close()
		return nil, err
	}
	t.Cleanup(func() { rc.Close() })
	return rc, nil
}

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
}

func TestX11VNCServesTheDisplayWithAOneTimePassword(t *testing.T) {
	display := screen(t, "#3366cc")
	s := desktop.New(desktop.Options{Config: desktop.Config{Display: display}, Log: testLog(t)})
	t.Cleanup(s.Stop)
	ctx := context.Background()
	r, err := s.Start(ctx)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if r.Host != "127.0.0.1" || r.Port < 5900 || len(r.Password) != 8 || r.ViewOnly || r.Server != "x11vnc on "+display {
		t.Fatalf("reply %+v", r)
	}
	// A second request of the session reaches the same server.
	r2, err := s.Start(ctx)
	if err != nil || r2 != r {
		t.Fatalf("second start: %+v, %v; want %+v", r2, err, r)
	}
	if _, err := dialRFB(t, r, "wrong!!!"); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("wrong password: %v, want authentication failed", err)
	}
	c, err := dialRFB(t, r, r.Password)
	if err != nil {
		t.Fatalf("handshake with the one-time password: %v", err)
	}
	if c.Width != 1280 || c.Height != 800 {
		t.Fatalf("framebuffer %dx%d, want 1280x800", c.Width, c.Height)
	}
	if p, err := c.WaitPixel(10, 10, 0x3366cc, 10*time.Second); err != nil || p != 0x3366cc {
		t.Fatalf("pixel (10,10) = #%06x (%v), want #3366cc", p, err)
	}
	// The password file is gone: x11vnc read and removed it.
	if m, _ := filepath.Glob(filepath.Join(os.TempDir(), "patchbay-desktop-*", "passwd")); len(m) != 0 {
		t.Errorf("password files left: %v", m)
	}
	// Stop kills x11vnc and waits: nothing listens any more.
	s.Stop()
	if c, err := net.Dial("tcp", net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port)))); err == nil {
		c.Close()
		t.Fatalf("port %d still open after Stop", r.Port)
	}
	if _, err := s.Start(ctx); err == nil {
		t.Fatal("start after stop succeeded")
	}
}

// pointTo sends a pointer event and waits until x11vnc has handled it (it
// reads client messages in order: the update answers the request behind it).
func pointTo(t *testing.T, c *rfbclient.Conn, x, y int) {
	t.Helper()
	if err := c.Pointer(0, x, y); err != nil {
		t.Fatal(err)
	}
	if err := c.RequestUpdate(false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadUpdate(); err != nil {
		t.Fatal(err)
	}
}

func TestX11VNCViewOnlyIgnoresThePointer(t *testing.T) {
	display := screen(t, "black")
	for _, viewOnly := range []bool{false, true} {
		s := desktop.New(desktop.Options{Config: desktop.Config{Display: display}, ViewOnly: viewOnly, Log: testLog(t)})
		r, err := s.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if r.ViewOnly != viewOnly {
			t.Errorf("reply ViewOnly %v, want %v", r.ViewOnly, viewOnly)
		}
		c, err := dialRFB(t, r, r.Password)
		if err != nil {
			t.Fatal(err)
		}
		before := rfbtest.Pointer(t, display)
		x, y := 100, 200
		if viewOnly {
			x, y = 300, 500
		}
		pointTo(t, c, x, y)
		after := rfbtest.Pointer(t, display)
		want := "x:" + strconv.Itoa(x) + " y:" + strconv.Itoa(y)
		if !viewOnly && after != want {
			t.Errorf("control: pointer at %q after a PointerEvent to %s", after, want)
		}
		if viewOnly && after != before {
			t.Errorf("view only: pointer moved from %q to %q", before, after)
		}
		c.Close()
		s.Stop()
	}
}

func TestX11VNCOnAMissingDisplayNamesTheSetting(t *testing.T) {
	rfbtest.Need(t, "x11vnc")
	s := desktop.New(desktop.Options{Config: desktop.Config{Display: ":987"}, Log: testLog(t)})
	defer s.Stop()
	_, err := s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "desktop_display") || !strings.Contains(err.Error(), ":987") {
		t.Fatalf("start on :987: %v, want an error naming the display and desktop_display", err)
	}
}

func TestWithoutX11VNCTheErrorSaysWhatToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	s := desktop.New(desktop.Options{Config: desktop.Config{Display: ":0"}, Log: testLog(t)})
	defer s.Stop()
	_, err := s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "apt-get install x11vnc") || !strings.Contains(err.Error(), "desktop_vnc") {
		t.Fatalf("start without x11vnc: %v", err)
	}
}

func TestDesktopVNCIsTheEndpointsOwnServer(t *testing.T) {
	display := screen(t, "black")
	// The endpoint's own VNC server: an x11vnc this test runs.
	own := desktop.New(desktop.Options{Config: desktop.Config{Display: display}, Log: testLog(t)})
	t.Cleanup(own.Stop)
	or, err := own.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(or.Host, strconv.Itoa(int(or.Port)))
	s := desktop.New(desktop.Options{Config: desktop.Config{VNC: addr}, ViewOnly: true, Log: testLog(t)})
	r, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Host != or.Host || r.Port != or.Port || r.Password != "" || !r.ViewOnly || !strings.Contains(r.Server, "desktop_vnc") {
		t.Fatalf("reply %+v", r)
	}
	if c, err := dialRFB(t, r, or.Password); err != nil || c.Width != 1280 {
		t.Fatalf("through desktop_vnc: %v", err)
	}
	s.Stop()
	own.Stop()
	s = desktop.New(desktop.Options{Config: desktop.Config{VNC: addr}, Log: testLog(t)})
	if _, err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("desktop_vnc with nothing listening: %v", err)
	}
}

func TestConfigIsValidatedSavedAndLoaded(t *testing.T) {
	dir := t.TempDir()
	if c, err := desktop.LoadConfig(dir); err != nil || c != (desktop.Config{}) {
		t.Fatalf("no file: %+v, %v", c, err)
	}
	for _, bad := range []desktop.Config{{VNC: "10.0.0.5:5900"}, {VNC: "localhost:5900"}, {VNC: "127.0.0.1"}, {XAuthority: "rel/.Xauthority"}, {Display: "-shared"}} {
		if err := desktop.SaveConfig(dir, bad); err == nil {
			t.Errorf("saved %+v", bad)
		}
	}
	want := desktop.Config{Display: ":1", XAuthority: "/run/user/1000/gdm/Xauthority", VNC: "127.0.0.1:5901"}
	if err := desktop.SaveConfig(dir, want); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(desktop.ConfigPath(dir))
	for _, k := range []string{`"desktop_display": ":1"`, `"desktop_xauthority"`, `"desktop_vnc": "127.0.0.1:5901"`} {
		if !strings.Contains(string(raw), k) {
			t.Errorf("desktop.json lacks %s:\n%s", k, raw)
		}
	}
	if fi, _ := os.Stat(desktop.ConfigPath(dir)); fi.Mode().Perm() != 0o600 {
		t.Errorf("desktop.json mode %v", fi.Mode())
	}
	if got, err := desktop.LoadConfig(dir); err != nil || got != want {
		t.Fatalf("loaded %+v, %v; want %+v", got, err, want)
	}
}

// socketOwner is the uid owning the loopback TCP listener on port (/proc/net/tcp).
func socketOwner(t *testing.T, port uint32) string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ToUpper(strconv.FormatUint(uint64(port), 16))
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 7 && f[3] == "0A" && strings.HasSuffix(f[1], ":"+strings.Repeat("0", 4-len(want))+want) {
			return f[7]
		}
	}
	t.Fatalf("no listener on port %d in /proc/net/tcp", port)
	return ""
}

func TestX11VNCRunsAsTheSessionUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs x11vnc as another user: run it as root (CI does)")
	}
	display := screen(t, "black")
	s := desktop.New(desktop.Options{Config: desktop.Config{Display: display},
		Credential: &desktop.Credential{Uid: 65534, Gid: 65534}, Log: testLog(t)})
	t.Cleanup(s.Stop)
	r, err := s.Start(context.Background())
	if err != nil {
		t.Fatalf("start as uid 65534: %v", err)
	}
	if uid := socketOwner(t, r.Port); uid != "65534" {
		t.Errorf("x11vnc's socket belongs to uid %s, want 65534", uid)
	}
	if c, err := dialRFB(t, r, r.Password); err != nil || c.Width != 1280 {
		t.Fatalf("handshake with x11vnc as uid 65534: %v", err)
	}
}
