// Package rfbtest is test support for the remote desktop: a check that the
// programs a test drives (Xvfb, x11vnc, xdotool...) are installed, a
// starter for a real Xvfb display and where its pointer is. The viewer the tests look through is
// agent/desktop/rfbclient. It fakes nothing.
package rfbtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Need fails t, naming the Debian package, when a program is not installed.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	pkg := map[string]string{"Xvfb": "xvfb", "x11vnc": "x11vnc", "xsetroot": "x11-xserver-utils", "xdotool": "xdotool"}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			p := pkg[tool]
			if p == "" {
				p = tool
			}
			t.Fatalf("%s is not installed: apt-get install -y %s (.ci/run installs it)", tool, p)
		}
	}
}

// Pointer is where the X pointer is on display, "x:N y:N", as xdotool
// getmouselocation reads it.
func Pointer(t testing.TB, display string) string {
	t.Helper()
	cmd := exec.Command("xdotool", "getmouselocation")
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := cmd.Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) < 2 {
		t.Fatalf("xdotool getmouselocation: %v %q", err, out)
	}
	return f[0] + " " + f[1]
}
